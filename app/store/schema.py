"""The journal's schema, as numbered migrations.

``PRAGMA user_version`` holds the version a file is at. Each migration runs in one
transaction together with the version bump, so a file is always at a whole version.
Never edit a migration that has shipped: add a new one.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: the records
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        started TEXT NOT NULL,
        ended TEXT,
        title TEXT,
        summary TEXT,
        running_summary TEXT,
        mood_before INTEGER CHECK (mood_before BETWEEN 0 AND 10),
        mood_after INTEGER CHECK (mood_after BETWEEN 0 AND 10),
        model TEXT,
        next_step TEXT,
        folded_until TEXT
    );
    CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
        content TEXT NOT NULL,
        created TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'complete'
            CHECK (status IN ('complete', 'partial', 'cancelled')),
        risk_level TEXT NOT NULL DEFAULT 'none'
            CHECK (risk_level IN ('none', 'elevated', 'crisis'))
    );
    CREATE INDEX messages_by_session ON messages(session_id, created);
    CREATE TABLE mood_entries (
        id TEXT PRIMARY KEY,
        created TEXT NOT NULL,
        score INTEGER NOT NULL CHECK (score BETWEEN 0 AND 10),
        emotions TEXT NOT NULL DEFAULT '[]',
        note TEXT,
        session_id TEXT REFERENCES sessions(id) ON DELETE SET NULL
    );
    CREATE INDEX mood_by_time ON mood_entries(created);
    CREATE TABLE thought_records (
        id TEXT PRIMARY KEY,
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        session_id TEXT REFERENCES sessions(id) ON DELETE SET NULL,
        situation TEXT NOT NULL DEFAULT '',
        moods TEXT NOT NULL DEFAULT '[]',
        automatic_thoughts TEXT NOT NULL DEFAULT '[]',
        evidence_for TEXT NOT NULL DEFAULT '',
        evidence_against TEXT NOT NULL DEFAULT '',
        balanced_thought TEXT NOT NULL DEFAULT '',
        balanced_belief INTEGER CHECK (balanced_belief BETWEEN 0 AND 100),
        moods_after TEXT NOT NULL DEFAULT '[]',
        distortions TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE notes (
        id TEXT PRIMARY KEY,
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: full-text search over messages, notes and thought records, kept in sync by triggers
    """
    CREATE VIRTUAL TABLE search_index USING fts5(
        body, kind UNINDEXED, ref_id UNINDEXED, created UNINDEXED, session_id UNINDEXED,
        tokenize = 'porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER messages_ai AFTER INSERT ON messages WHEN new.role != 'system' BEGIN
        INSERT INTO search_index (body, kind, ref_id, created, session_id)
        VALUES (new.content, 'message', new.id, new.created, new.session_id);
    END;
    CREATE TRIGGER messages_au AFTER UPDATE OF content ON messages WHEN new.role != 'system' BEGIN
        DELETE FROM search_index WHERE kind = 'message' AND ref_id = old.id;
        INSERT INTO search_index (body, kind, ref_id, created, session_id)
        VALUES (new.content, 'message', new.id, new.created, new.session_id);
    END;
    CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
        DELETE FROM search_index WHERE kind = 'message' AND ref_id = old.id;
    END;
    CREATE TRIGGER notes_ai AFTER INSERT ON notes BEGIN
        INSERT INTO search_index (body, kind, ref_id, created)
        VALUES (new.body, 'note', new.id, new.created);
    END;
    CREATE TRIGGER notes_au AFTER UPDATE ON notes BEGIN
        DELETE FROM search_index WHERE kind = 'note' AND ref_id = old.id;
        INSERT INTO search_index (body, kind, ref_id, created)
        VALUES (new.body, 'note', new.id, new.created);
    END;
    CREATE TRIGGER notes_ad AFTER DELETE ON notes BEGIN
        DELETE FROM search_index WHERE kind = 'note' AND ref_id = old.id;
    END;
    CREATE VIEW thought_record_text AS
        SELECT id, created, session_id,
               situation || char(10) || (
                   SELECT coalesce(group_concat(json_extract(value, '$.text'), char(10)), '')
                   FROM json_each(automatic_thoughts)
               ) || char(10) || evidence_for || char(10) || evidence_against
                 || char(10) || balanced_thought AS body
        FROM thought_records;
    CREATE TRIGGER thought_records_ai AFTER INSERT ON thought_records BEGIN
        INSERT INTO search_index (body, kind, ref_id, created, session_id)
        SELECT body, 'thought_record', id, created, session_id
        FROM thought_record_text WHERE id = new.id;
    END;
    CREATE TRIGGER thought_records_au AFTER UPDATE ON thought_records BEGIN
        DELETE FROM search_index WHERE kind = 'thought_record' AND ref_id = old.id;
        INSERT INTO search_index (body, kind, ref_id, created, session_id)
        SELECT body, 'thought_record', id, created, session_id
        FROM thought_record_text WHERE id = new.id;
    END;
    CREATE TRIGGER thought_records_ad AFTER DELETE ON thought_records BEGIN
        DELETE FROM search_index WHERE kind = 'thought_record' AND ref_id = old.id;
    END;
    INSERT INTO search_index (body, kind, ref_id, created, session_id)
        SELECT content, 'message', id, created, session_id FROM messages WHERE role != 'system';
    INSERT INTO search_index (body, kind, ref_id, created)
        SELECT body, 'note', id, created FROM notes;
    INSERT INTO search_index (body, kind, ref_id, created, session_id)
        SELECT body, 'thought_record', id, created, session_id FROM thought_record_text;
    """,
]

LATEST_VERSION = len(MIGRATIONS)
