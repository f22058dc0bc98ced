// The ephemeral server lives in the product (kpipe bench uses it too); the tests import it from here.
export { findPostgresBin, postgresControl, removePostgres, startPostgres, type PostgresServer } from '../../src/shell/postgres/ephemeral-server.ts'
