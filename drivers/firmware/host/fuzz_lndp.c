/*
 * host/fuzz_lndp.c - libFuzzer target for the firmware's parser (lndp.c), built on the host
 * with AddressSanitizer + UndefinedBehaviorSanitizer (host/fuzz.sh, tests/test_fuzz.py):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *         -o fuzz_lndp host/fuzz_lndp.c lndp.c
 *
 * Input: byte 0 picks a board configuration, the rest is fed to lndp_feed (a NUL byte stands
 * for a receive-ring overflow). Checked on every reply (abort = finding):
 *   - at most LNDP_MAX_REPLY bytes, printable ASCII, ends in '\n', correct CRC-8;
 *   - an OK reply only to a line PROTOCOL.md allows (an independent strict grammar here:
 *     upper-case hex fields of the right widths, one space between fields, '\r' before
 *     '\n' only, command I/Y/W/R/S/X with its arguments);
 *   - wipers only set to codes within the part's range, channels within the board;
 *   - switches only set within the board's switch channels.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../lndp.h"

static const lndp_config_t CONFIGS[] = {
    {"X9C", 16, 99, 49, 0, 1, 0}, {"MCP41", 14, 256, 128, 1, 0, 0}, {"MCP42", 16, 256, 128, 1, 0, 2},
    {"MCP42", 7, 255, 128, 1, 0, 0}, {"X9C", 14, 99, 49, 0, 1, 2}, {"MCP42", 16, 256, 128, 1, 0, 8},
};
static const lndp_config_t *cfg;
static uint16_t wiper[LNDP_MAX_CHANNELS];

void hw_set(uint8_t ch, uint16_t from, uint16_t to)
{
    (void)from;
    if (ch >= cfg->n_channels || to > cfg->max_code) abort();
    wiper[ch] = to;
}

uint16_t hw_read(uint8_t ch, uint16_t recorded)
{
    if (ch >= cfg->n_channels) abort();
    return cfg->readback ? wiper[ch] : recorded;
}

void hw_store(uint8_t ch)
{
    if (ch >= cfg->n_channels || !cfg->nonvolatile) abort();
}

void hw_switch(uint8_t mask)
{
    if (cfg->n_switches == 0 || (cfg->n_switches < 8 && (mask >> cfg->n_switches))) abort();
}

static int is_hex(const char *s, size_t n)
{
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F'))) return 0;
    return 1;
}

/* a request line PROTOCOL.md allows: "SS C[ ARG]...*KK" (without '\r'/'\n') */
static int allowed(const char *l, size_t n)
{
    if (n < 7 || l[n - 3] != '*' || !is_hex(l + n - 2, 2) || !is_hex(l, 2) || l[2] != ' ') return 0;
    size_t body = n - 3;
    char c = l[3];
    const char *a = l + 5;
    size_t an = body > 5 ? body - 5 : 0;
    if (body > 4 && l[4] != ' ') return 0;
    if (c == 'I' || c == 'Y') return body == 4;
    unsigned w = cfg->max_code <= 0xFF ? 2 : 3;
    if (c == 'W')
        return an > 3 && is_hex(a, 2) && a[2] == ' ' && is_hex(a + 3, an - 3) && (an - 3) % w == 0;
    if (c == 'R') return an == 5 && is_hex(a, 2) && a[2] == ' ' && is_hex(a + 3, 2);
    if (c == 'X') return an == 2 && is_hex(a, 2) && cfg->n_switches > 0;
    if (c == 'S') return an == 11 && is_hex(a, 2) && a[2] == ' ' && is_hex(a + 3, 2) && memcmp(a + 5, " STORE", 6) == 0;
    return 0;
}

static char last_ok[LNDP_MAX_REPLY + 1];

static void check_reply(const char *r, uint8_t n, const char *line, size_t ln)
{
    if (n == 0 || n > LNDP_MAX_REPLY || r[n - 1] != '\n' || n < 4 || r[n - 4] != '*') abort();
    for (uint8_t i = 0; i + 1 < n; i++)
        if (r[i] < 0x20 || r[i] > 0x7E) abort();
    uint8_t crc = lndp_crc8((const uint8_t *)r, (uint8_t)(n - 4));
    static const char HEX[] = "0123456789ABCDEF";
    if (r[n - 3] != HEX[crc >> 4] || r[n - 2] != HEX[crc & 15]) abort();
    if (n > 6 && memcmp(r + 2, " OK ", 4) == 0) {
        /* a replay (same SS and CRC as the last request: PROTOCOL.md's retransmission) repeats
         * the kept reply without parsing; only fresh acceptances must be well-formed lines */
        int replay = strlen(last_ok) == n && memcmp(last_ok, r, n) == 0;
        while (ln && line[ln - 1] == '\r') ln--;
        if (!replay && !allowed(line, ln)) abort(); /* accepted a line the protocol does not allow */
        memcpy(last_ok, r, n);
        last_ok[n] = 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    cfg = &CONFIGS[data[0] % (sizeof CONFIGS / sizeof CONFIGS[0])];
    for (int i = 0; i < LNDP_MAX_CHANNELS; i++) wiper[i] = cfg->power_up_code;
    static lndp_t p;
    lndp_init(&p, cfg);
    last_ok[0] = 0;
    char out[LNDP_MAX_REPLY + 1];
    char line[256];
    size_t ln = 0;
    int overflowed = 0;
    for (size_t i = 1; i < size; i++) {
        uint8_t b = data[i];
        if (b == 0) {
            lndp_overflow(&p);
            overflowed = 1;
            continue;
        }
        uint8_t n = lndp_feed(&p, b, out);
        if (b != '\n') {
            if (ln < sizeof line) line[ln++] = (char)b;
            else overflowed = 1;
            continue;
        }
        if (n == 0) abort(); /* every line gets exactly one reply */
        if (!overflowed && ln < sizeof line) check_reply(out, n, line, ln);
        ln = 0;
        overflowed = 0;
    }
    return 0;
}
