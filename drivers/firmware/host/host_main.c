/*
 * host/host_main.c - the parser on the host (kept out of the sketch folder's root, which the
 * Arduino IDE compiles): bytes from stdin, replies to stdout.
 *
 *   host_lndp FAMILY N_CHANNELS MAX_CODE POWER_UP_CODE READBACK NONVOLATILE [--ready] [--switches=N] < in > out
 *
 * Wipers are an array; STORE and switch settings (X) are logged to stderr. A byte 0x00 in the input stands for a
 * receive-ring overflow (lndp_overflow), so tests can exercise that path too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lndp.h"

static uint16_t wiper[LNDP_MAX_CHANNELS];

void hw_set(uint8_t ch, uint16_t from, uint16_t to)
{
    (void)from;
    wiper[ch] = to;
}

uint16_t hw_read(uint8_t ch, uint16_t recorded)
{
    extern int readback_from_part;
    return readback_from_part ? wiper[ch] : recorded;
}

void hw_store(uint8_t ch) { fprintf(stderr, "store %u\n", ch); }

void hw_switch(uint8_t mask) { fprintf(stderr, "switch %02X\n", mask); }

int readback_from_part = 0;

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: %s FAMILY N MAX POWER_UP READBACK NONVOLATILE [--ready]\n", argv[0]);
        return 2;
    }
    static lndp_config_t cfg;
    cfg.family = argv[1];
    cfg.n_channels = (uint8_t)atoi(argv[2]);
    cfg.max_code = (uint16_t)atoi(argv[3]);
    cfg.power_up_code = (uint16_t)atoi(argv[4]);
    cfg.readback = (uint8_t)atoi(argv[5]);
    cfg.nonvolatile = (uint8_t)atoi(argv[6]);
    int ready = 0;
    for (int i = 7; i < argc; i++) {
        if (strcmp(argv[i], "--ready") == 0) ready = 1;
        else if (strncmp(argv[i], "--switches=", 11) == 0) cfg.n_switches = (uint8_t)atoi(argv[i] + 11);
    }
    if (cfg.n_switches > LNDP_MAX_SWITCHES) {
        fprintf(stderr, "switches must be 0..%d\n", LNDP_MAX_SWITCHES);
        return 2;
    }
    if (cfg.n_channels < 1 || cfg.n_channels > LNDP_MAX_CHANNELS) {
        fprintf(stderr, "N must be 1..%d\n", LNDP_MAX_CHANNELS);
        return 2;
    }
    readback_from_part = cfg.readback;
    for (int i = 0; i < LNDP_MAX_CHANNELS; i++) wiper[i] = cfg.power_up_code;
    static lndp_t p;
    lndp_init(&p, &cfg);
    char out[LNDP_MAX_REPLY + 1];
    if (ready) fwrite(out, 1, lndp_ready(out), stdout);
    int c;
    while ((c = getchar()) != EOF) {
        if (c == 0) {
            lndp_overflow(&p);
            continue;
        }
        uint8_t n = lndp_feed(&p, (uint8_t)c, out);
        if (n) fwrite(out, 1, n, stdout);
    }
    return 0;
}
