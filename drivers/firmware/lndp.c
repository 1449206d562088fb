/*
 * lndp.c - the digipot board's command parser (see lndp.h and drivers/PROTOCOL.md).
 * No hardware access here: it compiles for the ATmega328P and on the host alike.
 * Its replies match simulator/board.py:BoardLogic byte for byte (tests/test_firmware.py).
 */
#include "lndp.h"

#include <string.h>

static const char HEX[] = "0123456789ABCDEF";

uint8_t lndp_crc8(const uint8_t *data, uint8_t n)
{
    uint8_t crc = 0;
    while (n--) {
        crc ^= *data++;
        for (uint8_t i = 0; i < 8; i++)
            crc = (crc & 0x80) ? (uint8_t)((crc << 1) ^ 0x07) : (uint8_t)(crc << 1);
    }
    return crc;
}

static int8_t hexval(char c)
{
    if (c >= '0' && c <= '9') return (int8_t)(c - '0');
    if (c >= 'A' && c <= 'F') return (int8_t)(c - 'A' + 10);
    return -1;
}

/* value of n upper-case hex digits, or -1 */
static int32_t hexnum(const char *s, uint8_t n)
{
    int32_t v = 0;
    if (n == 0) return -1;
    while (n--) {
        int8_t d = hexval(*s++);
        if (d < 0) return -1;
        v = (v << 4) | d;
    }
    return v;
}

/* ---------------------------------------------------------------- reply building */
typedef struct {
    char *buf;
    uint8_t n;
} out_t;

static void put(out_t *o, const char *s)
{
    while (*s && o->n < LNDP_MAX_REPLY - 4) o->buf[o->n++] = *s++;
}

static void puthex(out_t *o, uint16_t v, uint8_t digits)
{
    while (digits--) {
        if (o->n < LNDP_MAX_REPLY - 4) o->buf[o->n++] = HEX[(v >> (4 * digits)) & 0xF];
    }
}

static void putdec(out_t *o, uint16_t v)
{
    char tmp[6];
    uint8_t i = 0;
    do {
        tmp[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i) {
        char c[2] = {tmp[--i], 0};
        put(o, c);
    }
}

static uint8_t seal(out_t *o)
{
    uint8_t crc = lndp_crc8((const uint8_t *)o->buf, o->n);
    o->buf[o->n++] = '*';
    o->buf[o->n++] = HEX[crc >> 4];
    o->buf[o->n++] = HEX[crc & 0xF];
    o->buf[o->n++] = '\n';
    o->buf[o->n] = 0;
    return o->n;
}

static const char *const ERR_NAME[] = {
    "", "CRC", "OVERFLOW", "SYNTAX", "UNKNOWN", "SEQ", "NOSYNC", "CHANNEL", "CODE", "NOTSUP"
};

static uint8_t error_reply(char *out, const char *seq, uint8_t code)
{
    out_t o = {out, 0};
    put(&o, seq);
    put(&o, " ER ");
    o.buf[o.n++] = (char)('0' + code / 10);
    o.buf[o.n++] = (char)('0' + code % 10);
    put(&o, " ");
    put(&o, ERR_NAME[code]);
    return seal(&o);
}

/* ---------------------------------------------------------------- state */
void lndp_reset(lndp_t *p)
{
    for (uint8_t i = 0; i < LNDP_MAX_CHANNELS; i++) p->codes[i] = p->cfg->power_up_code;
    p->switches = 0;
    p->len = 0;
    p->overflow = 0;
    p->synced = 0;
    p->last_seq = 0;
    p->last_req_crc = -1;
    p->last_reply_len = 0;
}

void lndp_init(lndp_t *p, const lndp_config_t *cfg)
{
    p->cfg = cfg;
    lndp_reset(p);
}

void lndp_overflow(lndp_t *p) { p->overflow = 1; }

uint8_t lndp_ready(char *out)
{
    out_t o = {out, 0};
    put(&o, "!RDY " LNDP_FW_NAME " " LNDP_FW_VERSION);
    return seal(&o);
}

static uint8_t width(const lndp_t *p) { return p->cfg->max_code <= 0xFF ? 2 : 3; }

static uint8_t table_crc(const lndp_t *p)
{
    uint8_t crc = 0;
    for (uint8_t ch = 0; ch < p->cfg->n_channels; ch++) {
        uint8_t b[2] = {(uint8_t)(p->codes[ch] >> 8), (uint8_t)(p->codes[ch] & 0xFF)};
        for (uint8_t k = 0; k < 2; k++) {
            crc ^= b[k];
            for (uint8_t i = 0; i < 8; i++)
                crc = (crc & 0x80) ? (uint8_t)((crc << 1) ^ 0x07) : (uint8_t)(crc << 1);
        }
    }
    return crc;
}

/* ---------------------------------------------------------------- commands */
#define MAX_ARGS 4
typedef struct {
    const char *s[MAX_ARGS];
    uint8_t n[MAX_ARGS];
    uint8_t count;     /* number of arguments; MAX_ARGS + 1 means "too many" */
} args_t;

static void split(const char *text, uint8_t len, args_t *a)
{
    a->count = 0;
    if (len == 0) return;
    uint8_t start = 0;
    for (uint8_t i = 0; i <= len; i++) {
        if (i == len || text[i] == ' ') {
            if (a->count >= MAX_ARGS) {
                a->count = MAX_ARGS + 1;
                return;
            }
            a->s[a->count] = text + start;
            a->n[a->count] = (uint8_t)(i - start);
            a->count++;
            start = (uint8_t)(i + 1);
        }
    }
}

/* first channel (2 hex digits) of a span of count channels; 0 on success, else an error code */
static uint8_t span(const lndp_t *p, const args_t *a, int32_t count, uint8_t *first)
{
    int32_t f = (a->n[0] == 2) ? hexnum(a->s[0], 2) : -1;
    if (f < 0) return LNDP_E_SYNTAX;
    if (count < 1 || f + count > p->cfg->n_channels) return LNDP_E_CHANNEL;
    *first = (uint8_t)f;
    return 0;
}

static uint8_t execute(lndp_t *p, const char *seq, char cmd, const args_t *a, char *out)
{
    const uint8_t w = width(p);
    out_t o = {out, 0};
    uint8_t first = 0, err;
    if (cmd == 'W') {
        if (a->count != 2 || a->n[1] == 0 || hexnum(a->s[1], 1) < 0 || a->n[1] % w)
            return error_reply(out, seq, LNDP_E_SYNTAX);
        for (uint8_t i = 0; i < a->n[1]; i++)
            if (hexval(a->s[1][i]) < 0) return error_reply(out, seq, LNDP_E_SYNTAX);
        uint8_t n = (uint8_t)(a->n[1] / w);
        if ((err = span(p, a, n, &first)) != 0) return error_reply(out, seq, err);
        for (uint8_t i = 0; i < n; i++)
            if ((uint16_t)hexnum(a->s[1] + i * w, w) > p->cfg->max_code) return error_reply(out, seq, LNDP_E_CODE);
        for (uint8_t i = 0; i < n; i++) {
            uint16_t c = (uint16_t)hexnum(a->s[1] + i * w, w);
            hw_set((uint8_t)(first + i), p->codes[first + i], c);
            p->codes[first + i] = c;
        }
        put(&o, seq);
        put(&o, " OK W ");
        puthex(&o, n, 2);
        put(&o, " ");
        puthex(&o, table_crc(p), 2);
        return seal(&o);
    }
    if (cmd == 'R' || cmd == 'S') {
        uint8_t want = (cmd == 'S') ? 3 : 2;
        if (a->count != want || a->n[1] != 2 || hexnum(a->s[1], 2) < 0) return error_reply(out, seq, LNDP_E_SYNTAX);
        if (cmd == 'S' && !(a->n[2] == 5 && memcmp(a->s[2], "STORE", 5) == 0))
            return error_reply(out, seq, LNDP_E_SYNTAX);
        int32_t n = hexnum(a->s[1], 2);
        if (cmd == 'R' && n > (LNDP_MAX_LINE - 12) / w) return error_reply(out, seq, LNDP_E_CHANNEL);
        if ((err = span(p, a, n, &first)) != 0) return error_reply(out, seq, err);
        put(&o, seq);
        if (cmd == 'S') {
            if (!p->cfg->nonvolatile) return error_reply(out, seq, LNDP_E_NOTSUP);
            for (uint8_t ch = first; ch < first + n; ch++) hw_store(ch);
            put(&o, " OK S ");
            puthex(&o, (uint16_t)n, 2);
            return seal(&o);
        }
        put(&o, " OK R ");
        for (uint8_t ch = first; ch < first + n; ch++) puthex(&o, hw_read(ch, p->codes[ch]), w);
        return seal(&o);
    }
    if (cmd == 'X') {
        /* SS X MM: every switch at once, bit k = switch k closed; the reply repeats the mask */
        if (a->count != 1 || a->n[0] != 2 || hexnum(a->s[0], 2) < 0) return error_reply(out, seq, LNDP_E_SYNTAX);
        uint8_t mask = (uint8_t)hexnum(a->s[0], 2);
        if (!p->cfg->n_switches) return error_reply(out, seq, LNDP_E_NOTSUP);
        if (p->cfg->n_switches < 8 && (mask >> p->cfg->n_switches)) return error_reply(out, seq, LNDP_E_CHANNEL);
        hw_switch(mask);
        p->switches = mask;
        put(&o, seq);
        put(&o, " OK X ");
        puthex(&o, mask, 2);
        return seal(&o);
    }
    return error_reply(out, seq, LNDP_E_UNKNOWN);
}

static uint8_t handle(lndp_t *p, uint8_t overflow, char *out)
{
    const char *line = p->line;
    uint8_t len = p->len;
    if (overflow || len + 1 > LNDP_MAX_LINE) return error_reply(out, "--", LNDP_E_OVERFLOW);
    int16_t star = -1;
    for (uint8_t i = 0; i < len; i++) {
        if ((uint8_t)line[i] >= 0x80) return error_reply(out, "--", LNDP_E_CRC);
        if (line[i] == '*') star = i;
    }
    if (star < 0 || len != star + 3) return error_reply(out, "--", LNDP_E_CRC);
    int32_t kk = hexnum(line + star + 1, 2);
    if (kk < 0 || (uint8_t)kk != lndp_crc8((const uint8_t *)line, (uint8_t)star)) return error_reply(out, "--", LNDP_E_CRC);
    uint8_t tlen = (uint8_t)star;  /* the body */
    /* tlen == 5: "SS C " (a trailing space: an empty field, found by the twin's fuzzing) */
    if (tlen < 4 || line[2] != ' ' || hexnum(line, 2) < 0 || (tlen > 4 && line[4] != ' ') || tlen == 5)
        return error_reply(out, "--", LNDP_E_SYNTAX);
    char seq[3] = {line[0], line[1], 0};
    uint8_t s = (uint8_t)hexnum(line, 2);
    char cmd = line[3];
    args_t a;
    split(line + 5, tlen > 5 ? (uint8_t)(tlen - 5) : 0, &a);
    out_t o = {out, 0};
    if (cmd == 'I') {
        if (a.count) return error_reply(out, seq, LNDP_E_SYNTAX);
        put(&o, seq);
        put(&o, " OK I " LNDP_FW_NAME " " LNDP_FW_VERSION " ");
        put(&o, p->cfg->family);
        put(&o, " ");
        putdec(&o, p->cfg->n_channels);
        put(&o, " ");
        putdec(&o, p->cfg->max_code);
        put(&o, p->cfg->readback ? " 1" : " 0");
        put(&o, p->cfg->nonvolatile ? " 1" : " 0");
        if (p->cfg->n_switches) {
            put(&o, " ");
            putdec(&o, p->cfg->n_switches);
        }
        return seal(&o);
    }
    if (cmd == 'Y') {
        if (a.count) return error_reply(out, seq, LNDP_E_SYNTAX);
        p->synced = 1;
        p->last_seq = s;
        p->last_req_crc = (int16_t)kk;
        put(&o, seq);
        put(&o, " OK Y");
        uint8_t n = seal(&o);
        memcpy(p->last_reply, out, n + 1);
        p->last_reply_len = n;
        return n;
    }
    if (!p->synced) return error_reply(out, seq, LNDP_E_NOSYNC);
    if (s == p->last_seq) {
        if ((int16_t)kk == p->last_req_crc) {  /* a retransmission: replay, do not execute */
            memcpy(out, p->last_reply, p->last_reply_len + 1);
            return p->last_reply_len;
        }
        return error_reply(out, seq, LNDP_E_SEQ);
    }
    if (s != (uint8_t)(p->last_seq + 1)) return error_reply(out, seq, LNDP_E_SEQ);
    uint8_t n = execute(p, seq, cmd, &a, out);
    p->last_seq = s;
    p->last_req_crc = (int16_t)kk;
    memcpy(p->last_reply, out, n + 1);
    p->last_reply_len = n;
    return n;
}

uint8_t lndp_feed(lndp_t *p, uint8_t byte, char *out)
{
    if (byte != '\n') {
        if (p->len < LNDP_MAX_LINE) p->line[p->len++] = (char)byte;
        else p->overflow = 1;
        return 0;
    }
    while (p->len && p->line[p->len - 1] == '\r') p->len--;
    uint8_t over = p->overflow;
    uint8_t n = handle(p, over, out);
    p->len = 0;
    p->overflow = 0;
    return n;
}
