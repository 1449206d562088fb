/*
 * switches.c - pin-level model of the analog switches on the digipot board, from the
 * datasheet: Analog Devices ADG411/ADG412/ADG413 Rev. D.
 *
 *  ADG412 (Table 3, truth table): the switch is ON with logic 1 on its IN pin, OFF with 0.
 *  Table 2 (12 V single supply, VL = 5 V): tON 250 ns max, tOFF 125 ns max - the switch has
 *  settled that long after its IN pin changed. The board's IN pins have 10 kOhm pull-downs:
 *  while the MCU is in reset (pins high-impedance) every switch is OFF.
 *
 * Every change of a switch is a side-channel line "SWITCH k 0|1". The check: the firmware
 * must not acknowledge an X command before the switches settled, i.e. the first UART byte
 * after a switch's IN pin changed starts >= tON (closing) or tOFF (opening) later; a
 * violation is an ERR line, the worst margin a STAT line.
 */
#include "switches.h"

#include <stdio.h>
#include <string.h>

#include "parts.h"

#define T_ON_NS 250.0
#define T_OFF_NS 125.0

static int n_sw;
static char sw_port[MAX_SWITCHES];
static int sw_bit[MAX_SWITCHES];
static int sw_level[MAX_SWITCHES];
static avr_cycle_count_t changed_at;
static double need_ns;     /* settling still owed before the next UART byte (0: none) */
static long n_checks;
static double worst_margin_ns;

int switches_init(const char *pins)
{
    n_sw = 0;
    char buf[64];
    snprintf(buf, sizeof buf, "%s", pins);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (n_sw >= MAX_SWITCHES || strlen(tok) != 2 || tok[0] < 'B' || tok[0] > 'D' || tok[1] < '0' || tok[1] > '7')
            return -1;
        sw_port[n_sw] = tok[0];
        sw_bit[n_sw] = tok[1] - '0';
        sw_level[n_sw] = 0;
        n_sw++;
    }
    return 0;
}

void switches_reset(void)
{
    for (int k = 0; k < n_sw; k++) {
        if (sw_level[k]) side_line("SWITCH %d 0", k);
        sw_level[k] = 0;
    }
    need_ns = 0;
}

int switches_pin(char port, int bit, int level)
{
    for (int k = 0; k < n_sw; k++) {
        if (sw_port[k] != port || sw_bit[k] != bit) continue;
        if (level != sw_level[k]) {
            sw_level[k] = level;
            changed_at = now_cycles();
            double t = level ? T_ON_NS : T_OFF_NS;
            if (t > need_ns) need_ns = t;
            side_line("SWITCH %d %d", k, level);
        }
        return 1;
    }
    return 0;
}

void switches_tx(void)
{
    if (need_ns <= 0) return;
    double waited = (double)(now_cycles() - changed_at) * 1e9 / 16e6;
    double margin = waited - need_ns;
    if (n_checks == 0 || margin < worst_margin_ns) worst_margin_ns = margin;
    n_checks++;
    if (margin < 0)
        side_line("ERR switch - acknowledged %.0f ns after a switch changed, before its %.0f ns switching time "
                  "(ADG412 Rev. D Table 2)", waited, need_ns);
    need_ns = 0;
}

void switches_stats(void)
{
    side_line("STAT adg412.tON/tOFF settled before the reply|ADG411/ADG412/ADG413 Rev. D Tab. 2|min|%ld|%.6g|%.6g",
              n_checks, n_checks ? worst_margin_ns + T_ON_NS : 0.0, T_ON_NS);
}
