-- Saved training state, so a cancelled or crashed run can resume.
CREATE TABLE checkpoints (
    id BIGSERIAL PRIMARY KEY,
    operation_id BIGINT NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    reason TEXT NOT NULL CHECK (reason IN ('periodic', 'cancellation', 'failure')),
    epoch INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
