-- alcode store, schema version 1 as written by the release before 'case kept' (store-writer
-- of that release): values upper-cased, displays in mixed case. Never edit this file:
-- test-store checks that migrating it keeps each display and takes the value's case from it.
PRAGMA application_id = 1634493284;
PRAGMA user_version = 1;
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE messages (  id INTEGER PRIMARY KEY,  account TEXT NOT NULL,  folder TEXT NOT NULL,  uidvalidity INTEGER NOT NULL,  uid INTEGER NOT NULL,  source TEXT NOT NULL,  message_id TEXT,  sender TEXT,  sender_name TEXT,  subject TEXT,  date INTEGER NOT NULL,  date_tz INTEGER NOT NULL,  seen_at INTEGER NOT NULL,  UNIQUE (account, folder, uidvalidity, uid, source));
INSERT INTO messages VALUES(1,'perso','INBOX',7,20,'','<7.20.perso@store-writer>','ne-pas-repondre@al-in.fr',NULL,'Votre code',1772525640,60,1796290731);
INSERT INTO messages VALUES(2,'perso','INBOX',7,21,'','<7.21.perso@store-writer>','rh@employeur.example',NULL,'Acces',1772612040,60,1796290731);
INSERT INTO messages VALUES(3,'perso','INBOX',7,22,'','<7.22.perso@store-writer>','rh@employeur.example',NULL,'Code entreprise',1772612040,60,1796290731);
INSERT INTO messages VALUES(4,'','',0,0,'/home/jeanne/old.mbox','<0.0.local@store-writer>','noreply@actionlogement.fr',NULL,'Loca-Pass',1751360400,120,1796290731);
CREATE TABLE codes (  id INTEGER PRIMARY KEY,  kind TEXT NOT NULL,  value TEXT NOT NULL,  display TEXT NOT NULL,  trusted INTEGER NOT NULL,  rule TEXT NOT NULL,  message INTEGER NOT NULL REFERENCES messages(id),  date INTEGER NOT NULL,  date_tz INTEGER NOT NULL,  first_seen INTEGER NOT NULL,  last_seen INTEGER NOT NULL,  expires_at INTEGER,  superseded INTEGER NOT NULL DEFAULT 0,  UNIQUE (kind, value));
INSERT INTO codes VALUES(1,'specific','K7P29XQ4','k7p2-9xq4',1,'store-writer@1',1,1772525640,60,1796290731,1796290731,NULL,0);
INSERT INTO codes VALUES(2,'access','AB3D9F7Q','aB3d.9F 7q',1,'store-writer@1',2,1772612040,60,1796290731,1796290731,NULL,0);
INSERT INTO codes VALUES(3,'company','12345678901234','123 456 789 01234',1,'store-writer@1',3,1772612040,60,1796290731,1796290731,NULL,0);
INSERT INTO codes VALUES(4,'file','LP20260087412','LP-2026-0087412',1,'store-writer@1',4,1751360400,120,1796290731,1796290731,NULL,0);
CREATE TABLE sightings (  code INTEGER NOT NULL REFERENCES codes(id) ON DELETE CASCADE,  message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,  rule TEXT NOT NULL,  trusted INTEGER NOT NULL,  PRIMARY KEY (code, message)) WITHOUT ROWID;
INSERT INTO sightings VALUES(1,1,'store-writer@1',1);
INSERT INTO sightings VALUES(2,2,'store-writer@1',1);
INSERT INTO sightings VALUES(3,3,'store-writer@1',1);
INSERT INTO sightings VALUES(4,4,'store-writer@1',1);
CREATE TABLE cursors (  account TEXT NOT NULL,  folder TEXT NOT NULL,  uidvalidity INTEGER NOT NULL,  last_uid INTEGER NOT NULL,  highest_modseq INTEGER NOT NULL DEFAULT 0,  messages_seen INTEGER NOT NULL DEFAULT 0,  updated_at INTEGER NOT NULL,  PRIMARY KEY (account, folder)) WITHOUT ROWID;
INSERT INTO cursors VALUES('perso','INBOX',7,22,0,3,1796290731);
CREATE INDEX codes_by_date ON codes (date DESC, id DESC);
CREATE INDEX codes_by_kind ON codes (kind, date DESC, id DESC);
CREATE INDEX codes_trusted ON codes (kind, date DESC, id DESC) WHERE trusted = 1;
CREATE INDEX codes_current ON codes (kind, date, id) WHERE superseded = 0;
CREATE INDEX codes_by_message ON codes (message);
CREATE INDEX codes_expiring ON codes (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX sightings_by_message ON sightings (message);
COMMIT;
