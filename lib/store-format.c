/* store-format: the store's codes written out for people and programs: JSON Lines (alcode
 * list/show/export --json), CSV (alcode export --csv), and the JSON of codes found by alcode
 * scan that are not stored. The store's JSON is built by SQLite's JSON functions in the query
 * itself, so that the sqlite3 shell can run the same SQL (bench/store.py compares the bytes);
 * store.c runs the queries (store-internal.h), this file says what they select and how the
 * rows are written. */
#include <errno.h>
#include <string.h>

#include "json-writer.h"
#include "store-format.h"
#include "store-internal.h"
#include "text.h"

/* RFC 3339 with the message's own offset ("2026-03-02T09:14:00+01:00", "…Z" for UTC), with
 * SQLite's built-in functions only, so that the sqlite3 shell can run the same query. */
#define SQL_RFC3339(t, tz)                                                                         \
        "(strftime('%Y-%m-%dT%H:%M:%S', " t " + 60 * " tz ", 'unixepoch') || iif(" tz " = 0, 'Z',"  \
        " printf('%s%02d:%02d', iif(" tz " < 0, '-', '+'), abs(" tz ") / 60, abs(" tz ") % 60)))"

/* One JSON object per code, with DESIGN.md's members in its order. json_patch('{}', obj)
 * applies obj as an RFC 7396 merge patch to an empty object, which drops its null members:
 * absent fields are absent, not null; json_set() then puts back "value": null for a
 * possible code. Local files carry "source" instead of the IMAP place;
 * "expired" and "superseded" appear only when true. ?3 is the current time. */
#define SQL_CODE_OBJECT                                                                            \
        "json_patch('{}', json_object('id', c.id, 'kind', c.kind, 'value', c.value,"               \
        " 'display', c.display, 'trusted', json(iif(c.trusted, 'true', 'false')),"                 \
        " 'sender', m.sender, 'date', " SQL_RFC3339("c.date", "c.date_tz") ","                     \
        " 'account', nullif(m.account, ''), 'folder', nullif(m.folder, ''),"                       \
        " 'uid', iif(m.source = '', m.uid, NULL), 'uidvalidity', iif(m.source = '', m.uidvalidity, NULL)," \
        " 'message_id', m.message_id, 'subject', m.subject, 'labels', json(m.labels), 'rule', c.rule," \
        " 'found_at', " SQL_RFC3339("c.first_seen", "0") ", 'source', nullif(m.source, ''),"       \
        " 'expired', iif(c.expires_at <= ?3, json('true'), NULL),"                                 \
        " 'superseded', iif(c.superseded, json('true'), NULL)))"
#define SQL_CODE_JSON                                                                              \
        "iif(c.value IS NULL, json_set(" SQL_CODE_OBJECT ", '$.value', json('null')), " SQL_CODE_OBJECT ")"

/* The bytes that may start what text_control_len() finds (a NUL ends the string anyway). */
#define CONTROL_LEADS                                                                              \
        "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16" \
        "\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f\xc2\xd8\xe2\xef"

/* One JSON line. SQLite escapes C0 controls; the characters of text_control_len() that it leaves
 * as they are (C1, bidi, DEL...) are written as \uXXXX: the same string to any JSON reader,
 * nothing a terminal acts on. They can only occur inside strings. */
static int write_json_line(const char *line, FILE *out) {
        const unsigned char *p = (const unsigned char *) line, *end = p + strlen(line);

        while (p < end) {
                const unsigned char *q = p;
                size_t n;
                int r;

                /* Runs of plain text in one write: only these bytes can start a control. */
                q += strcspn((const char *) p, CONTROL_LEADS);
                if (q > p && fwrite(p, 1, (size_t) (q - p), out) != (size_t) (q - p))
                        return negative_errno();
                p = q;
                if (p >= end)
                        break;
                n = text_control_len(p, (size_t) (end - p));
                if (n == 0) {
                        if (putc(*p++, out) < 0)
                                return negative_errno();
                        continue;
                }
                r = json_write_control(out, p, n);
                if (r < 0)
                        return r;
                p += n;
        }
        return putc('\n', out) < 0 ? negative_errno() : 0;
}

/* Writes column 0 of every row as a line. Returns the number of lines. */
static int write_rows(sqlite3_stmt *st, FILE *out) {
        int rc, n = 0, r;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *line = (const char *) sqlite3_column_text(st, 0);
                if (line && (r = write_json_line(line, out)) < 0)
                        return r;
                n++;
        }
        return rc == SQLITE_DONE ? n : store_errno_from_sqlite(rc);
}

int store_write_json(Store *s, const StoreFilter *f, FILE *out) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = store_filter_query(s, SQL_CODE_JSON, f, &st);
        if (r < 0)
                return r;
        return write_rows(st, out);
}

/* RFC 4180 field. A cell a spreadsheet would take for a formula (mail is hostile: a subject
 * "=HYPERLINK(…)") is prefixed with an apostrophe, as OWASP advises for CSV exports. Control
 * characters (see text_control_len()) become '?': text from mail carries none into the file,
 * nor to a terminal that shows it. */
static int write_csv_field(const char *v, FILE *out) {
        bool quote, formula;

        if (!v)
                return 0;
        quote = strpbrk(v, ",\"");
        formula = v[0] && strchr("=+-@\t\r", v[0]);
        if ((quote && putc('"', out) < 0) || (formula && putc('\'', out) < 0))
                return negative_errno();
        const char *end = v + strlen(v);
        for (const char *p = v; *p; p++) {
                unsigned char c = (unsigned char) *p;
                size_t n = c < 0x20 || c == 0x7f || c == 0xC2 || c == 0xD8 || c == 0xE2 || c == 0xEF
                                   ? text_control_len((const unsigned char *) p, (size_t) (end - p))
                                   : 0;
                if (n > 0) {
                        if (putc('?', out) < 0)
                                return negative_errno();
                        p += n - 1;
                } else if ((*p == '"' && putc('"', out) < 0) || putc(*p, out) < 0)
                        return negative_errno();
        }
        return quote && putc('"', out) < 0 ? negative_errno() : 0;
}

int store_write_csv(Store *s, FILE *out) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r, rc;

        r = store_prepare(s,
                    "SELECT c.id, c.kind, c.value, c.display, iif(c.trusted, 'true', 'false'), m.sender, "
                    SQL_RFC3339("c.date", "c.date_tz") ", m.account, m.folder,"
                    " iif(m.source = '', m.uidvalidity, NULL), iif(m.source = '', m.uid, NULL),"
                    " m.message_id, m.subject, c.rule, " SQL_RFC3339("c.first_seen", "0") ", m.source"
                    " FROM codes c JOIN messages m ON m.id = c.message ORDER BY c.date DESC, c.id DESC",
                    &st);
        if (r < 0)
                return r;
        if (fputs("id,kind,value,display,trusted,sender,date,account,folder,uidvalidity,uid,"
                  "message_id,subject,rule,found_at,source\r\n", out) < 0)
                return negative_errno();
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                for (int i = 0; i < 16; i++) {
                        if (i > 0 && putc(',', out) < 0)
                                return negative_errno();
                        r = write_csv_field((const char *) sqlite3_column_text(st, i), out);
                        if (r < 0)
                                return r;
                }
                if (fputs("\r\n", out) < 0)
                        return negative_errno();
        }
        return store_errno_from_sqlite(rc);
}

/* SQLite's strftime() knows years 0000 to 9999: a date past them was left out. */
#define MAX_RFC3339_TIME INT64_C(253402300799)

int store_json_for_message(const Message *m, FILE *out) {
        for (size_t i = 0; i < m->n_codes; i++) {
                const Code *c = &m->codes[i];
                JsonWriter w;
                char date[40];
                int r;

                /* DESIGN.md's members in its order; absent ones are left out, not null, except
                 * "value", which a possible code has as null, last. */
                json_writer_begin(&w, out);
                json_writer_string(&w, "kind", code_kind_to_string(c->kind));
                if (c->value)
                        json_writer_string(&w, "value", c->value);
                if (c->display)
                        json_writer_string(&w, "display", c->display);
                json_writer_bool(&w, "trusted", c->trusted);
                if (m->sender)
                        json_writer_string(&w, "sender", m->sender);
                if (m->date > 0 && m->date + 60 * (int64_t) m->date_tz <= MAX_RFC3339_TIME)
                        json_writer_string(&w, "date", format_rfc3339(m->date, m->date_tz, date, sizeof date));
                if (m->ref.account)
                        json_writer_string(&w, "account", m->ref.account);
                if (m->ref.folder)
                        json_writer_string(&w, "folder", m->ref.folder);
                if (m->ref.account) {
                        json_writer_uint(&w, "uid", m->ref.uid);
                        json_writer_uint(&w, "uidvalidity", m->ref.uidvalidity);
                }
                if (m->message_id)
                        json_writer_string(&w, "message_id", m->message_id);
                if (m->subject)
                        json_writer_string(&w, "subject", m->subject);
                if (c->rule)
                        json_writer_string(&w, "rule", c->rule);
                if (m->ref.source)
                        json_writer_string(&w, "source", m->ref.source);
                if (!c->value)
                        json_writer_null(&w, "value");
                r = json_writer_end(&w);
                if (r < 0)
                        return r;
        }
        return 0;
}
