/*
 * lndp.h - the digipot board's line protocol (drivers/PROTOCOL.md), hardware-free.
 *
 * The parser knows nothing about registers: it is fed received bytes one at a time and
 * produces reply lines; it reaches the digipots only through the hw_* hooks below, which
 * the AVR build (main.c) implements with GPIO/SPI and the host build (host_main.c) with an
 * array. The same file therefore compiles for the ATmega328P and on the host, where the
 * test-suite feeds it the byte sequences the Python driver tests use.
 */
#ifndef LNDP_H
#define LNDP_H

#include <stdint.h>

#define LNDP_MAX_LINE 64     /* receive buffer and longest request line, '\n' included */
#define LNDP_MAX_REPLY 64    /* longest reply line, '\n' included */
#define LNDP_MAX_CHANNELS 16
#define LNDP_MAX_SWITCHES 8  /* one byte of switch states (X command) */
#define LNDP_FW_NAME "LNDP"
#define LNDP_FW_VERSION "1.0"

enum {
    LNDP_E_CRC = 1, LNDP_E_OVERFLOW, LNDP_E_SYNTAX, LNDP_E_UNKNOWN, LNDP_E_SEQ,
    LNDP_E_NOSYNC, LNDP_E_CHANNEL, LNDP_E_CODE, LNDP_E_NOTSUP
};

typedef struct {
    const char *family;      /* "X9C", "MCP41" or "MCP42" */
    uint8_t n_channels;
    uint16_t max_code;
    uint16_t power_up_code;
    uint8_t readback;        /* the part's wiper register can be read */
    uint8_t nonvolatile;     /* the part can store its wiper (STORE) */
    uint8_t n_switches;      /* analog switch channels (0: none; the I reply then has no field for them) */
} lndp_config_t;

typedef struct {
    const lndp_config_t *cfg;
    uint16_t codes[LNDP_MAX_CHANNELS];   /* the firmware's record of every wiper */
    uint8_t switches;                    /* switch states, bit k = switch k closed (0 after reset) */
    char line[LNDP_MAX_LINE];
    uint8_t len;
    uint8_t overflow;
    uint8_t synced;
    uint8_t last_seq;
    int16_t last_req_crc;
    char last_reply[LNDP_MAX_REPLY + 1];
    uint8_t last_reply_len;
} lndp_t;

/* Hardware hooks, provided by the platform. */
void hw_set(uint8_t ch, uint16_t from, uint16_t to);   /* move a wiper */
uint16_t hw_read(uint8_t ch, uint16_t recorded);       /* readback (or the record) */
void hw_store(uint8_t ch);                             /* store in non-volatile memory */
void hw_switch(uint8_t mask);                          /* set every switch (bit k: switch k closed), settled on return */

uint8_t lndp_crc8(const uint8_t *data, uint8_t n);
void lndp_init(lndp_t *p, const lndp_config_t *cfg);
/* Power-up state: record = power-up code, not synced. */
void lndp_reset(lndp_t *p);
/* Feed one received byte; when a line completes, writes the reply to out (NUL-terminated)
 * and returns its length, else returns 0. out must hold LNDP_MAX_REPLY + 1 bytes. */
uint8_t lndp_feed(lndp_t *p, uint8_t byte, char *out);
/* The receive ring overflowed: the line being received is incomplete. */
void lndp_overflow(lndp_t *p);
/* The ready line "!RDY LNDP 1.0*KK\n"; returns its length. */
uint8_t lndp_ready(char *out);

#endif
