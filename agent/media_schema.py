"""Schema migrations of the media room: what ffprobe and the recorder's own files say of
each clip beyond the ``clips`` row (append-only; see agent.database).

``clip_media`` is written in the transaction of the clip's ``clip.ingested`` leaf, from
the leaf's ``media`` object (docs/media.md): one row per probed clip, for search by
integrity class, time and place.
"""

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE clip_media (
        clip_id TEXT PRIMARY KEY REFERENCES clips (clip_id),
        integrity TEXT CHECK (integrity IN ('ok', 'truncated', 'undecodable', 'not_media')),
        problem TEXT,
        kind TEXT,
        duration_ms INTEGER,
        video_codec TEXT,
        audio_codec TEXT,
        width INTEGER,
        height INTEGER,
        frame_rate TEXT,
        start_recorder TEXT,
        end_recorder TEXT,
        start_corrected TEXT,
        end_corrected TEXT,
        clock_offset_ms INTEGER,
        location TEXT,
        location_source TEXT,
        track_points INTEGER,
        recorder_serial TEXT,
        leaf_index INTEGER NOT NULL
    );
    CREATE INDEX clip_media_integrity ON clip_media (integrity);
    CREATE INDEX clip_media_start ON clip_media (start_corrected);
    """,
)
