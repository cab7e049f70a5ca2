/** How a config file describes a Temporal cluster (the `TEMPORAL_*` variables override each field). */
export interface TemporalSettings {
  /** Frontend `host:port`. */
  readonly address?: string;
  /** Namespace; default `default`. */
  readonly namespace?: string;
  /** An API key in clear (prefer `apiKeyRef`). */
  readonly apiKey?: string;
  /** Where the API key lives: `env:NAME` or `file:PATH`. */
  readonly apiKeyRef?: string;
  /** TLS: true for the system's CAs, or files for a custom CA and a client certificate (mTLS). */
  readonly tls?:
    | boolean
    | {
        readonly serverName?: string;
        readonly serverCaCertFile?: string;
        readonly clientCertFile?: string;
        readonly clientKeyFile?: string;
      };
  /** A profile of Temporal's TOML client config file (`TEMPORAL_PROFILE`). */
  readonly profile?: string;
  /** Temporal's TOML client config file (`TEMPORAL_CONFIG_FILE`). */
  readonly configFile?: string;
}
