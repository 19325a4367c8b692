/**
 * The JSON of `GET /sci/api/status` (docs/status-api.md, schema 1).
 * Fields may be added by the server; the panel reads what it knows.
 */

export type HealthLevel = 'ok' | 'degraded' | 'failing';

export interface ICheck {
  name: string;
  status: HealthLevel | string;
  detail?: string;
  duration_ms?: number;
  since?: number;
}

export interface IGpu {
  index: number;
  name: string;
  utilization_percent?: number | null;
  memory_used_bytes?: number | null;
  memory_total_bytes?: number | null;
  temperature_c?: number | null;
}

export interface IResources {
  cpu_percent?: number | null;
  cpu_count?: number | null;
  memory?: {
    used_bytes?: number;
    total_bytes?: number;
    percent?: number;
    limit_source?: string;
  } | null;
  disk?: {
    path?: string;
    free_bytes?: number;
    total_bytes?: number;
    percent?: number;
  } | null;
  gpus?: IGpu[];
}

export interface IKernel {
  id: string;
  name?: string;
  execution_state?: string;
  last_activity?: string;
  connections?: number;
}

export interface IBreaker {
  name: string;
  state: string;
  failures?: number;
  opened_at?: number | null;
  next_attempt_at?: number | null;
}

export interface IErrorRecord {
  time: number;
  where?: string;
  category?: string;
  error_type?: string;
  message?: string;
  correlation_id?: string | null;
  kernel_id?: string | null;
}

export interface IAlert {
  name: string;
  severity?: string;
  since?: number;
  summary?: string;
  value?: number;
}

export interface ILlmModel {
  provider?: string;
  model?: string;
  calls?: number;
  input_tokens?: number;
  output_tokens?: number;
  cost_usd?: number | null;
}

export interface ILlm {
  calls?: number;
  cost_usd?: number | null;
  cost_saved_usd?: number | null;
  prices_version?: string;
  by_model?: ILlmModel[];
}

export interface IStatus {
  schema: number;
  version?: string;
  time: number;
  status: HealthLevel | string;
  checks?: ICheck[];
  resources?: IResources;
  kernels?: IKernel[];
  cells?: {
    total?: number;
    errors?: number;
    p50_seconds?: number | null;
    p95_seconds?: number | null;
  };
  cache?: {
    hits?: number;
    misses?: number;
    hit_ratio?: number | null;
    bytes?: number;
    entries?: number;
  };
  breakers?: IBreaker[];
  retries?: { total?: number };
  errors?: IErrorRecord[];
  alerts?: IAlert[];
  llm?: ILlm | null;
}
