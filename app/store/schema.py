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
    # 2: full-text search over messages, notes and thought records, kept in sync by triggers.
    # search_map holds, per indexed row, what it points at and when it was written (indexed),
    # so "newest first" and the triggers' deletes never scan the full-text table.
    """
    CREATE VIRTUAL TABLE search_index USING fts5(
        body, tokenize = 'porter unicode61 remove_diacritics 2'
    );
    CREATE TABLE search_map (
        rowid INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        ref_id TEXT NOT NULL,
        created TEXT NOT NULL,
        session_id TEXT
    );
    CREATE UNIQUE INDEX search_map_ref ON search_map(kind, ref_id);
    CREATE INDEX search_map_created ON search_map(created);
    CREATE VIEW thought_record_text AS
        SELECT id, created, session_id,
               situation || char(10) || (
                   SELECT coalesce(group_concat(json_extract(value, '$.text'), char(10)), '')
                   FROM json_each(automatic_thoughts)
               ) || char(10) || evidence_for || char(10) || evidence_against
                 || char(10) || balanced_thought AS body
        FROM thought_records;
    CREATE TRIGGER messages_ai AFTER INSERT ON messages WHEN new.role != 'system' BEGIN
        INSERT INTO search_map (kind, ref_id, created, session_id)
        VALUES ('message', new.id, new.created, new.session_id);
        INSERT INTO search_index (rowid, body) VALUES (last_insert_rowid(), new.content);
    END;
    CREATE TRIGGER messages_au AFTER UPDATE OF content ON messages WHEN new.role != 'system' BEGIN
        DELETE FROM search_index WHERE rowid =
            (SELECT rowid FROM search_map WHERE kind = 'message' AND ref_id = old.id);
        INSERT INTO search_index (rowid, body) VALUES (
            (SELECT rowid FROM search_map WHERE kind = 'message' AND ref_id = old.id),
            new.content);
    END;
    CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
        DELETE FROM search_index WHERE rowid =
            (SELECT rowid FROM search_map WHERE kind = 'message' AND ref_id = old.id);
        DELETE FROM search_map WHERE kind = 'message' AND ref_id = old.id;
    END;
    CREATE TRIGGER notes_ai AFTER INSERT ON notes BEGIN
        INSERT INTO search_map (kind, ref_id, created) VALUES ('note', new.id, new.created);
        INSERT INTO search_index (rowid, body) VALUES (last_insert_rowid(), new.body);
    END;
    CREATE TRIGGER notes_au AFTER UPDATE OF body ON notes BEGIN
        DELETE FROM search_index WHERE rowid =
            (SELECT rowid FROM search_map WHERE kind = 'note' AND ref_id = old.id);
        INSERT INTO search_index (rowid, body) VALUES (
            (SELECT rowid FROM search_map WHERE kind = 'note' AND ref_id = old.id), new.body);
    END;
    CREATE TRIGGER notes_ad AFTER DELETE ON notes BEGIN
        DELETE FROM search_index WHERE rowid =
            (SELECT rowid FROM search_map WHERE kind = 'note' AND ref_id = old.id);
        DELETE FROM search_map WHERE kind = 'note' AND ref_id = old.id;
    END;
    CREATE TRIGGER thought_records_ai AFTER INSERT ON thought_records BEGIN
        INSERT INTO search_map (kind, ref_id, created, session_id)
        VALUES ('thought_record', new.id, new.created, new.session_id);
        INSERT INTO search_index (rowid, body)
        SELECT last_insert_rowid(), body FROM thought_record_text WHERE id = new.id;
    END;
    CREATE TRIGGER thought_records_au AFTER UPDATE ON thought_records BEGIN
        DELETE FROM search_index WHERE rowid =
            (SELECT rowid FROM search_map WHERE kind = 'thought_record' AND ref_id = old.id);
        INSERT INTO search_index (rowid, body)
        SELECT (SELECT rowid FROM search_map WHERE kind = 'thought_record' AND ref_id = old.id),
               body
        FROM thought_record_text WHERE id = new.id;
    END;
    CREATE TRIGGER thought_records_ad AFTER DELETE ON thought_records BEGIN
        DELETE FROM search_index WHERE rowid =
            (SELECT rowid FROM search_map WHERE kind = 'thought_record' AND ref_id = old.id);
        DELETE FROM search_map WHERE kind = 'thought_record' AND ref_id = old.id;
    END;
    INSERT INTO search_map (kind, ref_id, created, session_id)
        SELECT 'message', id, created, session_id FROM messages WHERE role != 'system';
    INSERT INTO search_map (kind, ref_id, created) SELECT 'note', id, created FROM notes;
    INSERT INTO search_map (kind, ref_id, created, session_id)
        SELECT 'thought_record', id, created, session_id FROM thought_records;
    INSERT INTO search_index (rowid, body)
        SELECT m.rowid, x.content FROM search_map m JOIN messages x ON x.id = m.ref_id
        WHERE m.kind = 'message';
    INSERT INTO search_index (rowid, body)
        SELECT m.rowid, x.body FROM search_map m JOIN notes x ON x.id = m.ref_id
        WHERE m.kind = 'note';
    INSERT INTO search_index (rowid, body)
        SELECT m.rowid, x.body FROM search_map m JOIN thought_record_text x ON x.id = m.ref_id
        WHERE m.kind = 'thought_record';
    """,
    # 3: the personal safety plan, and the answers to Haven's direct safety questions
    """
    CREATE TABLE safety_plan (
        id TEXT PRIMARY KEY,
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        warning_signs TEXT NOT NULL DEFAULT '',
        coping TEXT NOT NULL DEFAULT '',
        distractions TEXT NOT NULL DEFAULT '',
        helpers TEXT NOT NULL DEFAULT '',
        professionals TEXT NOT NULL DEFAULT '',
        environment TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE screener_answers (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        round INTEGER NOT NULL DEFAULT 1,
        question TEXT NOT NULL,
        asked TEXT NOT NULL,
        answer TEXT CHECK (answer IN ('yes', 'no', 'not_sure', 'declined', 'unclear')),
        answered TEXT,
        message_id TEXT REFERENCES messages(id) ON DELETE SET NULL
    );
    CREATE INDEX screener_by_session ON screener_answers(session_id, asked);
    """,
    # 4 (issue 15): the recall index. What Haven may bring back from earlier, ranked with
    # BM25 — thought records, session summaries and steps, notes, mood notes — in an index of
    # its own, so that messages (most of the journal, and never recalled) neither slow it down
    # nor skew its statistics. `gist` is the heart of an item (a thought record's situation,
    # hot thought and balanced thought; a session's summary and step; a note; a mood note),
    # `body` the rest. Kept in sync by triggers; the text never leaves the encrypted file.
    """
    CREATE VIRTUAL TABLE recall_index USING fts5(
        gist, body, tokenize = 'porter unicode61 remove_diacritics 2'
    );
    CREATE TABLE recall_map (
        rowid INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('thought_record', 'session', 'note', 'mood')),
        ref_id TEXT NOT NULL,
        created TEXT NOT NULL
    );
    CREATE UNIQUE INDEX recall_map_ref ON recall_map(kind, ref_id);
    CREATE INDEX messages_crisis ON messages(session_id) WHERE risk_level = 'crisis';
    CREATE VIEW recall_thought_record_text AS
        SELECT id, created,
               situation || char(10) || (
                   SELECT coalesce(group_concat(json_extract(value, '$.text'), char(10)), '')
                   FROM json_each(automatic_thoughts) WHERE json_extract(value, '$.hot')
               ) || char(10) || balanced_thought AS gist,
               (
                   SELECT coalesce(group_concat(json_extract(value, '$.text'), char(10)), '')
                   FROM json_each(automatic_thoughts)
                   WHERE NOT coalesce(json_extract(value, '$.hot'), 0)
               ) || char(10) || evidence_for || char(10) || evidence_against AS body
        FROM thought_records;
    CREATE VIEW recall_session_text AS
        SELECT id, started AS created,
               coalesce(summary, '') || char(10) || coalesce(next_step, '') AS gist,
               coalesce(title, '') AS body
        FROM sessions
        WHERE trim(coalesce(summary, '')) != '' OR trim(coalesce(next_step, '')) != '';
    CREATE VIEW recall_mood_text AS
        SELECT id, created, note AS gist, '' AS body
        FROM mood_entries WHERE trim(coalesce(note, '')) != '';

    CREATE TRIGGER recall_thought_records_ai AFTER INSERT ON thought_records BEGIN
        INSERT INTO recall_map (kind, ref_id, created)
        VALUES ('thought_record', new.id, new.created);
        INSERT INTO recall_index (rowid, gist, body)
        SELECT (SELECT rowid FROM recall_map WHERE kind = 'thought_record' AND ref_id = new.id),
               gist, body
        FROM recall_thought_record_text WHERE id = new.id;
    END;
    CREATE TRIGGER recall_thought_records_au AFTER UPDATE ON thought_records BEGIN
        DELETE FROM recall_index WHERE rowid =
            (SELECT rowid FROM recall_map WHERE kind = 'thought_record' AND ref_id = old.id);
        INSERT INTO recall_index (rowid, gist, body)
        SELECT (SELECT rowid FROM recall_map WHERE kind = 'thought_record' AND ref_id = old.id),
               gist, body
        FROM recall_thought_record_text WHERE id = new.id;
    END;
    CREATE TRIGGER recall_thought_records_ad AFTER DELETE ON thought_records BEGIN
        DELETE FROM recall_index WHERE rowid =
            (SELECT rowid FROM recall_map WHERE kind = 'thought_record' AND ref_id = old.id);
        DELETE FROM recall_map WHERE kind = 'thought_record' AND ref_id = old.id;
    END;

    CREATE TRIGGER recall_sessions_ai AFTER INSERT ON sessions
    WHEN trim(coalesce(new.summary, '')) != '' OR trim(coalesce(new.next_step, '')) != '' BEGIN
        INSERT INTO recall_map (kind, ref_id, created) VALUES ('session', new.id, new.started);
        INSERT INTO recall_index (rowid, gist, body)
        SELECT (SELECT rowid FROM recall_map WHERE kind = 'session' AND ref_id = new.id),
               gist, body
        FROM recall_session_text WHERE id = new.id;
    END;
    CREATE TRIGGER recall_sessions_au AFTER UPDATE OF title, summary, next_step ON sessions BEGIN
        DELETE FROM recall_index WHERE rowid =
            (SELECT rowid FROM recall_map WHERE kind = 'session' AND ref_id = old.id);
        DELETE FROM recall_map WHERE kind = 'session' AND ref_id = old.id;
        INSERT INTO recall_map (kind, ref_id, created)
        SELECT 'session', id, created FROM recall_session_text WHERE id = new.id;
        INSERT INTO recall_index (rowid, gist, body)
        SELECT (SELECT rowid FROM recall_map WHERE kind = 'session' AND ref_id = new.id),
               gist, body
        FROM recall_session_text WHERE id = new.id;
    END;
    CREATE TRIGGER recall_sessions_ad AFTER DELETE ON sessions BEGIN
        DELETE FROM recall_index WHERE rowid =
            (SELECT rowid FROM recall_map WHERE kind = 'session' AND ref_id = old.id);
        DELETE FROM recall_map WHERE kind = 'session' AND ref_id = old.id;
    END;

    CREATE TRIGGER recall_notes_ai AFTER INSERT ON notes BEGIN
        INSERT INTO recall_map (kind, ref_id, created) VALUES ('note', new.id, new.created);
        INSERT INTO recall_index (rowid, gist, body) VALUES (
            (SELECT rowid FROM recall_map WHERE kind = 'note' AND ref_id = new.id), new.body, '');
    END;
    CREATE TRIGGER recall_notes_au AFTER UPDATE OF body ON notes BEGIN
        DELETE FROM recall_index WHERE rowid =
            (SELECT rowid FROM recall_map WHERE kind = 'note' AND ref_id = old.id);
        INSERT INTO recall_index (rowid, gist, body) VALUES (
            (SELECT rowid FROM recall_map WHERE kind = 'note' AND ref_id = old.id), new.body, '');
    END;
    CREATE TRIGGER recall_notes_ad AFTER DELETE ON notes BEGIN
        DELETE FROM recall_index WHERE rowid =
            (SELECT rowid FROM recall_map WHERE kind = 'note' AND ref_id = old.id);
        DELETE FROM recall_map WHERE kind = 'note' AND ref_id = old.id;
    END;

    CREATE TRIGGER recall_moods_ai AFTER INSERT ON mood_entries
    WHEN trim(coalesce(new.note, '')) != '' BEGIN
        INSERT INTO recall_map (kind, ref_id, created) VALUES ('mood', new.id, new.created);
        INSERT INTO recall_index (rowid, gist, body) VALUES (
            (SELECT rowid FROM recall_map WHERE kind = 'mood' AND ref_id = new.id), new.note, '');
    END;
    CREATE TRIGGER recall_moods_au AFTER UPDATE OF note ON mood_entries BEGIN
        DELETE FROM recall_index WHERE rowid =
            (SELECT rowid FROM recall_map WHERE kind = 'mood' AND ref_id = old.id);
        DELETE FROM recall_map WHERE kind = 'mood' AND ref_id = old.id;
        INSERT INTO recall_map (kind, ref_id, created)
        SELECT 'mood', id, created FROM recall_mood_text WHERE id = new.id;
        INSERT INTO recall_index (rowid, gist, body)
        SELECT (SELECT rowid FROM recall_map WHERE kind = 'mood' AND ref_id = new.id), gist, body
        FROM recall_mood_text WHERE id = new.id;
    END;
    CREATE TRIGGER recall_moods_ad AFTER DELETE ON mood_entries BEGIN
        DELETE FROM recall_index WHERE rowid =
            (SELECT rowid FROM recall_map WHERE kind = 'mood' AND ref_id = old.id);
        DELETE FROM recall_map WHERE kind = 'mood' AND ref_id = old.id;
    END;

    INSERT INTO recall_map (kind, ref_id, created)
        SELECT 'thought_record', id, created FROM thought_records;
    INSERT INTO recall_map (kind, ref_id, created)
        SELECT 'session', id, created FROM recall_session_text;
    INSERT INTO recall_map (kind, ref_id, created) SELECT 'note', id, created FROM notes;
    INSERT INTO recall_map (kind, ref_id, created) SELECT 'mood', id, created FROM recall_mood_text;
    INSERT INTO recall_index (rowid, gist, body)
        SELECT m.rowid, x.gist, x.body FROM recall_map m
        JOIN recall_thought_record_text x ON x.id = m.ref_id WHERE m.kind = 'thought_record';
    INSERT INTO recall_index (rowid, gist, body)
        SELECT m.rowid, x.gist, x.body FROM recall_map m
        JOIN recall_session_text x ON x.id = m.ref_id WHERE m.kind = 'session';
    INSERT INTO recall_index (rowid, gist, body)
        SELECT m.rowid, x.body, '' FROM recall_map m
        JOIN notes x ON x.id = m.ref_id WHERE m.kind = 'note';
    INSERT INTO recall_index (rowid, gist, body)
        SELECT m.rowid, x.gist, x.body FROM recall_map m
        JOIN recall_mood_text x ON x.id = m.ref_id WHERE m.kind = 'mood';
    """,
    # 5 (issue 16): search finds mood entries (the note and the feelings named) and
    # sessions (title, summary and the step for next time) too, as the search box promises
    # ("everything you have written"). Same search_index and search_map as migration 2, kept
    # in sync by triggers; what is already in the journal is indexed here, once.
    """
    CREATE VIEW search_mood_text AS
        SELECT id, created, session_id,
               coalesce(note, '') || char(10) || (
                   SELECT coalesce(group_concat(json_extract(value, '$.name'), ', '), '')
                   FROM json_each(emotions)
               ) AS body
        FROM mood_entries
        WHERE trim(coalesce(note, '')) != '' OR json_array_length(emotions) > 0;
    CREATE VIEW search_session_text AS
        SELECT id, started AS created, id AS session_id,
               coalesce(next_step, '') || char(10) || coalesce(summary, '') || char(10)
                 || coalesce(title, '') AS body
        FROM sessions
        WHERE trim(coalesce(next_step, '') || coalesce(summary, '') || coalesce(title, '')) != '';

    CREATE TRIGGER search_moods_ai AFTER INSERT ON mood_entries BEGIN
        INSERT INTO search_map (kind, ref_id, created, session_id)
        SELECT 'mood', id, created, session_id FROM search_mood_text WHERE id = new.id;
        INSERT INTO search_index (rowid, body)
        SELECT (SELECT rowid FROM search_map WHERE kind = 'mood' AND ref_id = new.id), body
        FROM search_mood_text WHERE id = new.id;
    END;
    CREATE TRIGGER search_moods_au AFTER UPDATE OF note, emotions, session_id ON mood_entries
    BEGIN
        DELETE FROM search_index WHERE rowid =
            (SELECT rowid FROM search_map WHERE kind = 'mood' AND ref_id = old.id);
        DELETE FROM search_map WHERE kind = 'mood' AND ref_id = old.id;
        INSERT INTO search_map (kind, ref_id, created, session_id)
        SELECT 'mood', id, created, session_id FROM search_mood_text WHERE id = new.id;
        INSERT INTO search_index (rowid, body)
        SELECT (SELECT rowid FROM search_map WHERE kind = 'mood' AND ref_id = new.id), body
        FROM search_mood_text WHERE id = new.id;
    END;
    CREATE TRIGGER search_moods_ad AFTER DELETE ON mood_entries BEGIN
        DELETE FROM search_index WHERE rowid =
            (SELECT rowid FROM search_map WHERE kind = 'mood' AND ref_id = old.id);
        DELETE FROM search_map WHERE kind = 'mood' AND ref_id = old.id;
    END;

    CREATE TRIGGER search_sessions_ai AFTER INSERT ON sessions BEGIN
        INSERT INTO search_map (kind, ref_id, created, session_id)
        SELECT 'session', id, created, session_id FROM search_session_text WHERE id = new.id;
        INSERT INTO search_index (rowid, body)
        SELECT (SELECT rowid FROM search_map WHERE kind = 'session' AND ref_id = new.id), body
        FROM search_session_text WHERE id = new.id;
    END;
    CREATE TRIGGER search_sessions_au AFTER UPDATE OF title, summary, next_step ON sessions
    BEGIN
        DELETE FROM search_index WHERE rowid =
            (SELECT rowid FROM search_map WHERE kind = 'session' AND ref_id = old.id);
        DELETE FROM search_map WHERE kind = 'session' AND ref_id = old.id;
        INSERT INTO search_map (kind, ref_id, created, session_id)
        SELECT 'session', id, created, session_id FROM search_session_text WHERE id = new.id;
        INSERT INTO search_index (rowid, body)
        SELECT (SELECT rowid FROM search_map WHERE kind = 'session' AND ref_id = new.id), body
        FROM search_session_text WHERE id = new.id;
    END;
    CREATE TRIGGER search_sessions_ad AFTER DELETE ON sessions BEGIN
        DELETE FROM search_index WHERE rowid =
            (SELECT rowid FROM search_map WHERE kind = 'session' AND ref_id = old.id);
        DELETE FROM search_map WHERE kind = 'session' AND ref_id = old.id;
    END;

    INSERT INTO search_map (kind, ref_id, created, session_id)
        SELECT 'mood', id, created, session_id FROM search_mood_text;
    INSERT INTO search_map (kind, ref_id, created, session_id)
        SELECT 'session', id, created, session_id FROM search_session_text;
    INSERT INTO search_index (rowid, body)
        SELECT m.rowid, x.body FROM search_map m JOIN search_mood_text x ON x.id = m.ref_id
        WHERE m.kind = 'mood';
    INSERT INTO search_index (rowid, body)
        SELECT m.rowid, x.body FROM search_map m JOIN search_session_text x ON x.id = m.ref_id
        WHERE m.kind = 'session';
    """,
    # 6 (issue 14): the settings table goes. Settings live in settings.toml (they
    # must be readable before the journal is unlocked), and nothing read or wrote the table.
    """
    DROP TABLE IF EXISTS settings;
    """,
]

LATEST_VERSION = len(MIGRATIONS)
