/*
 * switches.h - pin-level model of the analog switches the firmware drives (switches.c).
 * Used by lndp_mcu.c only.
 */
#ifndef LNDP_SWITCHES_H
#define LNDP_SWITCHES_H

#define MAX_SWITCHES 8

/* pins "B0,C1,..." (AVR port letter + bit) of switch 0, 1, ...; returns -1 on a bad list */
int switches_init(const char *pins);
int switches_pin(char port, int bit, int level); /* 1 if the pin is a switch's control input */
void switches_tx(void);                          /* the MCU starts sending a byte (its reply) */
void switches_reset(void);                       /* MCU reset / power-up: inputs float, pull-downs open every switch */
void switches_stats(void);                       /* STAT line of the switching-time check */

#endif
