/* Parsers and validators of single values that the config file, the rule files and the CLI
 * share: one definition each, so that `alcode init`, alcode.conf and a .rules file accept the
 * same booleans, ports and domains. Pure functions: no I/O, no error text (the caller knows
 * the file, line and key to name). */
#pragma once

#include <stdint.h>

#include "macro.h"

/* yes/true/on/1 → 1, no/false/off/0 → 0 (caseless), anything else -EINVAL. */
int parse_boolean(const char *v) _pure_;

/* A decimal number from 0 to max, digits only (no sign, blank or base prefix): 0 or -EINVAL;
 * *ret is written only on success. */
int parse_unsigned(const char *v, unsigned max, unsigned *ret);

/* A TCP port, 1 to 65535: 0 or -EINVAL. */
int parse_port(const char *v, uint16_t *ret);

/* A mail domain as the user writes it, returned in the form mail carries it: lower-case ASCII,
 * internationalised labels as their xn-- A-label (IDNA2008 through libidn2, so "exämple.fr"
 * becomes "xn--exmple-cua.fr"). Accepted: two labels or more, each 1 to 63 letters, digits and
 * '-', not starting or ending with '-', at most 253 bytes in all; an xn-- label must be valid
 * punycode of a valid U-label. Returns 0 and the new string in *ret (owned), -EINVAL, or
 * -ENOMEM. */
int domain_normalize(const char *in, char **ret);
/* Whether domain_normalize() accepts d. */
bool domain_valid(const char *d);
/* The xn-- form of an address's domain when it is written in letters other than ASCII: a
 * homograph ("аctionlogement.fr", a Cyrillic а) looks like the real domain, its A-label does not.
 * *ret is NULL when the domain is ASCII, or not a domain libidn2 can convert. 0 or -ENOMEM. */
int address_domain_ascii(const char *address, char **ret);
