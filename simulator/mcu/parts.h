/*
 * parts.h - pin-level models of the digipots the firmware drives, with the datasheets'
 * timing minima and command formats checked (parts.c). Used by lndp_mcu.c only.
 */
#ifndef LNDP_PARTS_H
#define LNDP_PARTS_H

#include <stdint.h>

#include <sim_avr.h>

#define MAX_CS 16

typedef struct {
    char family[8];     /* "X9C", "MCP41", "MCP42" */
    int n_channels;
    int max_code;       /* 99 (X9C), 128 (MCP4131/4231), 256 (MCP4151/4251) */
    int stored_code;    /* X9C: the EEPROM's content before the first power-up */
    int n_cs;
    char cs_port[MAX_CS];
    int cs_bit[MAX_CS];
    char inc_port, ud_port;
    int inc_bit, ud_bit;
} part_config_t;

/* provided by lndp_mcu.c */
void side_line(const char *fmt, ...);
avr_cycle_count_t now_cycles(void);
uint8_t spi_reg(int which); /* 0: SPCR, 1: SPSR */

int parts_init(const part_config_t *cfg);
void parts_power_up(void);              /* parts powered: X9C recalls its EEPROM, MCP to POR */
void parts_mcu_reset(void);             /* the MCU reset (DTR): the parts keep their state */
void parts_pin(char port, int bit, int level);
void parts_spi_start(uint8_t mosi);     /* SPDR written: a transfer starts */
uint8_t parts_spi_byte(uint8_t mosi);   /* the transfer ends: the byte the part shifted out */
int parts_idle(void);
void parts_stats(void);                 /* STAT lines: every check, its count and worst value */

#endif
