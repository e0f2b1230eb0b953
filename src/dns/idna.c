/*
 * idna.c - UTF-8 domain names to A-labels with libidn2 (see idna.h). Owns nothing past a call.
 */
#include "dns/idna.h"

#include <errno.h>
#include <idn2.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int ph_dns_name_to_ascii(const char *name, char *out, size_t size)
{
    bool ascii = true;
    for (const char *p = name; *p; p++)
        ascii &= (unsigned char)*p < 0x80;
    if (ascii) {
        int n = snprintf(out, size, "%s", name);
        return n >= 0 && (size_t)n < size ? 0 : -EINVAL;
    }
    char *alabel = NULL;
    int rc = idn2_to_ascii_8z(name, &alabel, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
    int r = rc == IDN2_OK && strlen(alabel) < size ? 0 : -EINVAL;
    if (r == 0)
        memcpy(out, alabel, strlen(alabel) + 1);
    idn2_free(alabel);
    return r;
}
