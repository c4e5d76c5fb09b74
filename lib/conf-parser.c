/* Key lookup and dispatch for table-driven INI parsers (see conf-parser.h). Tables are short
 * (tens of keys): a linear search costs less than building an index for each file. */
#include "conf-parser.h"
#include "strv.h"

const ConfigTableItem *config_table_find(const ConfigTableItem *table, size_t n_table, const char *section,
                                         const char *key) {
        for (size_t i = 0; i < n_table; i++)
                if (streq(table[i].section, section) && streq(table[i].key, key))
                        return &table[i];
        return NULL;
}

int config_parse_words(IniFile *f, const char *key, const char *value, int ltype, void *data, void *userdata,
                       ConfigParserCallback parse_word) {
        _cleanup_strv_free_ char **l = NULL;
        int r;

        r = strv_split_comma(value, &l);
        if (r < 0)
                return r;
        STRV_FOREACH(w, l) {
                r = parse_word(f, key, *w, ltype, data, userdata);
                if (r != 0)
                        return MIN(r, 0);
        }
        return 0;
}

int config_table_parse(const ConfigTableItem *item, IniFile *f, const char *key, const char *value,
                       void *object, void *userdata) {
        return item->parse(f, key, value, item->ltype, (char *) object + item->offset, userdata);
}
