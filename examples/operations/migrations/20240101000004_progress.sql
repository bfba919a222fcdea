-- How far a running job is (0-100), as the API reports it; and checkpoints
-- saved when the service shuts down with the job still running.
ALTER TABLE operations
    ADD COLUMN progress INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100);

ALTER TABLE checkpoints DROP CONSTRAINT checkpoints_reason_check;
ALTER TABLE checkpoints
    ADD CONSTRAINT checkpoints_reason_check
    CHECK (reason IN ('periodic', 'cancellation', 'failure', 'shutdown'));
