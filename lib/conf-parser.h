/* One table-driven key dispatcher for alcode.conf and the rule files, as systemd's
 * conf-parser: each file type describes its keys once in a table of
 * {section, key, parser, ltype, offset}, and a key is handled by looking it up there and
 * calling its parser with data = the section's object + offset and userdata = the caller's
 * parse state. ini-file.h reads the lines; this decides what a key means. */
#pragma once

#include <stddef.h>

#include "ini-file.h"
#include "macro.h"

/* A key's parser. data: where the value goes (the section's object + the item's offset);
 * ltype: the item's own argument (which list, which limit); userdata: the parse state of the
 * file type. It reports bad values itself with ini_file_error() and returns 0 to go on, or a
 * negative errno to stop reading (-ENOMEM). */
typedef int (*ConfigParserCallback)(IniFile *f, const char *key, const char *value, int ltype,
                                    void *data, void *userdata);

/* Declares or defines a parser: CONFIG_PARSER_PROTOTYPE(parse_bool) { ... }. A parser uses
 * the arguments it needs. */
#define CONFIG_PARSER_PROTOTYPE(name)                                                              \
        int name(_unused_ IniFile *f, _unused_ const char *key, _unused_ const char *value,       \
                 _unused_ int ltype, _unused_ void *data, _unused_ void *userdata)

typedef struct ConfigTableItem {
        const char *section; /* the section's kind: "alcode", "account" for [account NAME]... */
        const char *key;
        ConfigParserCallback parse;
        int ltype;
        size_t offset;       /* of the field in the section's object */
} ConfigTableItem;

/* The item for key in section (exact, case-sensitive), or NULL. */
const ConfigTableItem *config_table_find(const ConfigTableItem *table, size_t n_table, const char *section,
                                         const char *key);

/* For a key whose value is a list: calls parse_word on each comma-separated word of value
 * (blanks around it trimmed, empty ones skipped), in order, with the key's own ltype, data and
 * userdata. parse_word returns 0 to go on, 1 when it reported its word as bad (the rest of the
 * list is then left unread), or a negative errno, which is returned. */
int config_parse_words(IniFile *f, const char *key, const char *value, int ltype, void *data, void *userdata,
                       ConfigParserCallback parse_word);

/* Calls item's parser on value, with data = object + item->offset. */
int config_table_parse(const ConfigTableItem *item, IniFile *f, const char *key, const char *value,
                       void *object, void *userdata);
