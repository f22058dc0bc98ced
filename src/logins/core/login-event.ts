/** The fields every login event must carry, in the order errors name them. */
export const REQUIRED_FIELDS = ['user_id', 'ip', 'device_id', 'app_version', 'device_type', 'timestamp', 'locale'] as const
export type RequiredField = (typeof REQUIRED_FIELDS)[number]

export type ErrorType = 'invalid_json' | 'missing_fields' | 'invalid_field'
export type FilterReason = 'stale' | 'app_version'

/** What the rules depend on besides the event itself (from the settings). */
export interface LoginRules {
  /** KPIPE_HASH_KEY */
  hashKey: string
  /** MAX_MESSAGE_AGE in seconds; 0 turns the staleness check off */
  maxMessageAgeSeconds: number
  allowedAppVersions: ReadonlySet<string>
}

/** The facts of a valid event that the summary counts. */
interface ValidLogin {
  userId: string
  deviceType: string
  locale: string
  appVersion: string
  /** epoch seconds */
  timestamp: number
}

/** Rule 5: the transformed event, for `processed-output`. `value` is its JSON text. */
export interface ProcessedLogin extends ValidLogin {
  kind: 'processed'
  value: string
}

/** Rules 3–4: for `cleaned-data`; `value` is the cleaned-data record (with the transformed event). */
export interface FilteredLogin extends ValidLogin {
  kind: 'filtered'
  reason: FilterReason
  value: string
}

/** Rules 1–2: for `processed-errors`; see errorRecord for the record itself. */
export interface FailedLogin {
  kind: 'failed'
  errorType: ErrorType
  /** human-readable, never the raw values (those travel in `raw`) */
  error: string
  fields: string[]
  userId: string | null
}

export type LoginOutcome = ProcessedLogin | FilteredLogin | FailedLogin
