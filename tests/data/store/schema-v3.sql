-- alcode store, schema version 3 as released, with a few rows: a trusted specific code in mixed
-- case (its message with Gmail labels), a company code, a look-alike sender's code in Junk, a
-- possible code (no value), a request number from a local mbox. Never edit this file: test-store
-- migrates it to the current schema.
PRAGMA application_id = 1634493284;
PRAGMA user_version = 3;
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE messages (  id INTEGER PRIMARY KEY,  account TEXT NOT NULL,  folder TEXT NOT NULL,  uidvalidity INTEGER NOT NULL,  uid INTEGER NOT NULL,  source TEXT NOT NULL,  message_id TEXT,  sender TEXT,  sender_name TEXT,  subject TEXT,  date INTEGER NOT NULL,  date_tz INTEGER NOT NULL,  seen_at INTEGER NOT NULL, labels TEXT,  UNIQUE (account, folder, uidvalidity, uid, source));
INSERT INTO messages VALUES(1,'perso','INBOX',7,10,'','<7.10.perso@store-writer>','ne-pas-repondre@actionlogement.fr',NULL,'Votre code spécifique',1772525640,60,1796290802,'["INBOX","Logement"]');
INSERT INTO messages VALUES(2,'perso','INBOX',7,11,'','<7.11.perso@store-writer>','rh@employeur.example',NULL,'Code entreprise',1772612040,60,1796290802,NULL);
INSERT INTO messages VALUES(3,'perso','Junk',8,3,'','<8.3.perso@store-writer>','alerte@action-logement-securite.com',NULL,'Urgent',1772698440,-300,1796290802,NULL);
INSERT INTO messages VALUES(4,'perso','INBOX',7,12,'','<7.12.perso@store-writer>','notifications@mail.al-in.fr',NULL,'Votre code AL''in',1772784840,60,1796290802,NULL);
INSERT INTO messages VALUES(5,'','',0,0,'/home/jeanne/Takeout/old.mbox','<0.0.local@store-writer>','ne-pas-repondre@actionlogement.fr',NULL,'Votre demande',1751360400,120,1796290802,NULL);
CREATE TABLE sightings (  code INTEGER NOT NULL REFERENCES codes(id) ON DELETE CASCADE,  message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,  rule TEXT NOT NULL,  trusted INTEGER NOT NULL,  PRIMARY KEY (code, message)) WITHOUT ROWID;
INSERT INTO sightings VALUES(1,1,'store-writer@1',1);
INSERT INTO sightings VALUES(2,2,'store-writer@1',1);
INSERT INTO sightings VALUES(3,3,'store-writer@1',0);
INSERT INTO sightings VALUES(4,4,'store-writer@1',1);
INSERT INTO sightings VALUES(5,5,'store-writer@1',1);
CREATE TABLE cursors (  account TEXT NOT NULL,  folder TEXT NOT NULL,  uidvalidity INTEGER NOT NULL,  last_uid INTEGER NOT NULL,  highest_modseq INTEGER NOT NULL DEFAULT 0,  messages_seen INTEGER NOT NULL DEFAULT 0,  updated_at INTEGER NOT NULL,  PRIMARY KEY (account, folder)) WITHOUT ROWID;
INSERT INTO cursors VALUES('perso','INBOX',7,12,0,3,1796290802);
INSERT INTO cursors VALUES('perso','Junk',8,3,0,1,1796290802);
CREATE TABLE IF NOT EXISTS "codes" (  id INTEGER PRIMARY KEY,  kind TEXT NOT NULL,  value TEXT COLLATE NOCASE,  display TEXT,  trusted INTEGER NOT NULL,  rule TEXT NOT NULL,  message INTEGER NOT NULL REFERENCES messages(id),  date INTEGER NOT NULL,  date_tz INTEGER NOT NULL,  first_seen INTEGER NOT NULL,  last_seen INTEGER NOT NULL,  expires_at INTEGER,  superseded INTEGER NOT NULL DEFAULT 0,  UNIQUE (kind, value),  CHECK ((kind = 'possible') = (value IS NULL)));
INSERT INTO codes VALUES(1,'specific','Ab12cD34','Ab12 cD34',1,'store-writer@1',1,1772525640,60,1796290802,1796290802,NULL,0);
INSERT INTO codes VALUES(2,'company','12345678901234','123 456 789 01234',1,'store-writer@1',2,1772612040,60,1796290802,1796290802,NULL,0);
INSERT INTO codes VALUES(3,'specific','ZQ817TXB','ZQ81 7TXB',0,'store-writer@1',3,1772698440,-300,1796290802,1796290802,NULL,0);
INSERT INTO codes VALUES(4,'possible',NULL,NULL,1,'store-writer@1',4,1772784840,60,1796290802,1796290802,NULL,0);
INSERT INTO codes VALUES(5,'request','D2026000123','D2026-000123',1,'store-writer@1',5,1751360400,120,1796290802,1796290802,NULL,0);
CREATE INDEX sightings_by_message ON sightings (message);
CREATE INDEX codes_by_date ON codes (date DESC, id DESC);
CREATE INDEX codes_by_kind ON codes (kind, date DESC, id DESC);
CREATE INDEX codes_trusted ON codes (kind, date DESC, id DESC) WHERE trusted = 1;
CREATE INDEX codes_current ON codes (kind, date, id) WHERE superseded = 0;
CREATE INDEX codes_by_message ON codes (message);
CREATE INDEX codes_expiring ON codes (expires_at) WHERE expires_at IS NOT NULL;
CREATE UNIQUE INDEX codes_possible ON codes (message) WHERE kind = 'possible';
COMMIT;
