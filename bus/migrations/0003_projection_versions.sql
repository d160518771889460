-- The version of each projection's code that built its live tables (none yet: version 1), and the
-- rebuild in progress of a projection, if any: the version it builds into the shadow tables and how
-- far into the event log it got, committed with each batch so a killed rebuild resumes from there.
CREATE TABLE bus.projection_versions (
    projection text        PRIMARY KEY,
    version    integer     NOT NULL,
    built_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bus.rebuilds (
    projection text        PRIMARY KEY,
    version    integer     NOT NULL,
    position   bigint      NOT NULL DEFAULT 0,
    done       bigint      NOT NULL DEFAULT 0,
    total      bigint      NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
