/* Text decoding: any declared charset to UTF-8, HTML to plain text, and the folding that makes
 * matching case-, accent- and spacing-insensitive. Pure functions, callable from any thread.
 * Every output is capped at `max` bytes (0 = no cap) and NUL-terminated; ret_len excludes the NUL. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

/* Converts n bytes in `charset` (NULL or empty: us-ascii) to UTF-8. Invalid sequences become
 * U+FFFD. ISO-8859-1 labels are read as Windows-1252, as browsers do (mislabelled curly quotes
 * and euro signs are common); a US-ASCII label is read as UTF-8 when the bytes are valid UTF-8
 * (mislabelled UTF-8 is common too), else as Windows-1252. A UTF-8 label (or none) on bytes that
 * are mostly not UTF-8 (more invalid sequences than valid multi-byte characters: Latin-1 sent as
 * UTF-8) is read as Windows-1252 too; a stray invalid byte in UTF-8 text is U+FFFD. Returns 0, 1 when the charset is unknown (the bytes
 * were then read as UTF-8, else Windows-1252: a warning, not a failure), -E2BIG when the output
 * was capped (still set), or -ENOMEM. */
int text_to_utf8(const char *charset, const char *in, size_t n, size_t max, char **ret,
                 size_t *ret_len);

/* Decodes one UTF-8 sequence at p (n > 0 bytes left; SIZE_MAX for a NUL-terminated string,
 * where a NUL ends any sequence). Returns its length (>= 1) and the code point, or U+FFFD with
 * length 1 for an invalid, overlong, surrogate or truncated sequence. The one UTF-8 decoder:
 * the CLI's terminal cleaning uses it too. */
size_t text_utf8_decode(const char *p, size_t n, unsigned *ret_cp);

/* Length of the character at p (n bytes readable) that could drive a terminal or reorder what it
 * shows, or 0: C0 controls and DEL, C1 controls (U+0080..U+009F), LRM/RLM/ALM, U+2028/9, bidi
 * embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069), BOM. Byte-level, for
 * the writers of logs, CSV and JSON; the CLI's printers judge code points the same way. */
size_t text_control_len(const unsigned char *p, size_t n);

/* Whether the n bytes at in are valid UTF-8 (NULs included): what text_utf8_decode() reads
 * without a U+FFFD of its own. */
bool text_utf8_valid(const char *in, size_t n) _pure_;

/* Returns a copy of in with every invalid UTF-8 sequence replaced by U+FFFD and NULs dropped. */
int text_utf8_sanitize(const char *in, size_t n, size_t max, char **ret, size_t *ret_len);

/* HTML to text: drops <head>, <style>, <script>, <title> and comments; <br> and block elements
 * become line breaks, table cells tab-separated fields; named and numeric entities are decoded;
 * attribute values (links) are dropped. Input and output UTF-8. Returns 0, -E2BIG, -ENOMEM. */
int text_html_to_text(const char *html, size_t n, size_t max, char **ret, size_t *ret_len);

/* Folds UTF-8 text for matching: accents removed (é → e, œ → oe), NBSP, narrow NBSP and other
 * spaces → ' ', zero-width and soft-hyphen characters removed, typographic quotes and
 * apostrophes → ' or ", dashes → '-', runs of blanks collapsed to one space, blanks around line
 * breaks trimmed, three or more line breaks → two. Case is kept (patterns are caseless).
 * ASCII letters and digits are never changed, so a code read from folded text is the code as
 * written. Returns 0, -E2BIG, -ENOMEM. */
int text_fold(const char *in, size_t n, size_t max, char **ret, size_t *ret_len);

/* Removes every URL (http(s)://…, www.…) and e-mail address from s[0..n), in place, leaving
 * one blank where the words around would otherwise touch: tracking links and bounce addresses
 * hold code-like tokens ("?c=ABCD1234", "bounce-620881@…"). Returns the new length; s stays
 * NUL-terminated if it was. */
size_t text_remove_links(char *s, size_t n);

/* Splits folded text into what the sender wrote and what they quote or forward: every line
 * from the first forward or reply header on ("-------- Message transféré --------",
 * "-----Original Message-----", "Le … a écrit :", a "De : / Envoyé : / Objet :" block) and
 * every line starting with '>' (markers removed) are quoted. Returns 0 when there is nothing
 * quoted (nothing is allocated then), 1 when split (both outputs owned, NUL-terminated),
 * -ENOMEM. */
int text_split_quoted(const char *s, size_t n, char **ret_own, size_t *ret_own_len, char **ret_quoted,
                      size_t *ret_quoted_len);
