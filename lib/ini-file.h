/* Reads an INI file with inih, giving every key the line and column it came from, so that the
 * config and rule parsers can say "file:line:column: message" for every error, not only the
 * first. Lines are limited by inih (INI_FILE_MAX_LINE); a longer line is an error, and a value
 * may continue on following lines that start with whitespace (pieces are joined with nothing
 * in between). A ';' after whitespace starts a comment, as does a line starting with '#' or ';'. */
#pragma once

#include "macro.h"

#define INI_FILE_MAX_LINE 196
/* Errors reported for one file before the rest of it is left unread (a file of a million
 * broken lines would otherwise print a million lines, and the list would grow without end). */
#define INI_FILE_MAX_ERRORS 100

typedef struct IniFile IniFile;

/* Called for each key. section is "" before any [section]. continuation is true when value
 * continues the previous key's value. Return 0 to go on or a negative errno to stop. */
typedef int (*IniFileHandler)(IniFile *f, const char *section, const char *key, const char *value,
                              bool continuation, void *userdata);

/* Parses path; errors (and those reported by the handler through ini_file_error()) are
 * appended to *errors as "path:line: message". Returns 0 when the file was read (even with
 * errors: check *errors), -errno when it could not be opened or read. */
int ini_file_parse(const char *path, IniFileHandler handler, void *userdata, char ***errors);

/* Inside a handler: the current position and file. */
unsigned ini_file_line(const IniFile *f);
/* Line of the [section] header the current key is under (0 before any). */
unsigned ini_file_section_line(const IniFile *f);
/* 1-based column where the current value starts on its line (0 if unknown). */
unsigned ini_file_value_column(const IniFile *f);
const char *ini_file_path(const IniFile *f);

/* Inside a handler: records "path:line: message" (column 0) or "path:line:column: message".
 * After INI_FILE_MAX_ERRORS of them, says so once and stops reading the file. */
int ini_file_error(IniFile *f, unsigned column, const char *fmt, ...) _printf_(3, 4);

/* The one form of a located error in alcode.conf and the rule files, appended to *errors:
 * "path:line: message", or "path:line:column: message" when column > 0. For errors found
 * after the file was read (a pattern's, placed by its own source map). */
int ini_file_append_error(char ***errors, const char *path, unsigned line, unsigned column, const char *fmt,
                          va_list ap) _printf_(5, 0);
