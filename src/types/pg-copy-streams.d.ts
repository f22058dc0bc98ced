// The part of pg-copy-streams kpipe uses (the package ships no types of its own).
declare module 'pg-copy-streams' {
  import type { Writable } from 'node:stream'
  import type { Submittable } from 'pg'

  export interface CopyStreamQuery extends Writable, Submittable {
    /** rows copied, once the stream has finished */
    rowCount: number
  }
  /** `COPY … FROM STDIN` as a writable stream, to pass to `client.query()` */
  export function from(text: string): CopyStreamQuery
}
