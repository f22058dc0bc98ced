import type { DashboardDeps } from '../server.ts'

/** What every route plugin of the dashboard is given. */
export interface RouteDeps extends DashboardDeps {
  /** rejects when `promise` takes longer than `ms` */
  withTimeout: <T>(promise: Promise<T>, ms: number, what: string) => Promise<T>
}
