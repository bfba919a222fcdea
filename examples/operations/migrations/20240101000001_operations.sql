-- Long-running jobs (training, backtests) and where they are in their life.
CREATE TABLE operations (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    symbol TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'PENDING'
        CHECK (status IN ('PENDING', 'RUNNING', 'COMPLETED', 'CANCELLED', 'FAILED')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX operations_running_heartbeat ON operations (last_heartbeat_at) WHERE status = 'RUNNING';
