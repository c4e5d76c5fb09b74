/* Key lookup and dispatch for table-driven INI parsers (see conf-parser.h). Tables are short
 * (tens of keys): a linear search costs less than building an index for each file. */
#include "conf-parser.h"

const ConfigTableItem *config_table_find(const ConfigTableItem *table, size_t n_table, const char *section,
                                         const char *key) {
        for (size_t i = 0; i < n_table; i++)
                if (streq(table[i].section, section) && streq(table[i].key, key))
                        return &table[i];
        return NULL;
}

int config_table_parse(const ConfigTableItem *item, IniFile *f, const char *key, const char *value,
                       void *object, void *userdata) {
        return item->parse(f, key, value, item->ltype, (char *) object + item->offset, userdata);
}
