/*
 * fuzz_addrlist.c - ph_addrlist_each on arbitrary header values: never reads out of bounds,
 * every reported address is within the limit, as long as it says, and free of the list's
 * separators outside quotes; the count matches the reports.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/addrlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *addr, size_t len, void *arg)
{
    int *n = arg;
    (*n)++;
    if (len == 0 || len > PH_ADDRLIST_ADDR_MAX || strlen(addr) > len)
        abort();
    for (size_t i = 0, q = 0; i < len; i++) {
        if (addr[i] == '\\' && q) {
            i++;
            continue;
        }
        if (addr[i] == '"')
            q = !q;
        else if (!q && (addr[i] == ';' || addr[i] == '<' || addr[i] == '>' || addr[i] == '('))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int n = 0;
    int r = ph_addrlist_each((const char *)data, size, check, &n);
    if (r >= 0 && r != n)
        abort();
    return 0;
}
