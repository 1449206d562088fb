/*
 * parts.c - pin-level digipot models for lndp_mcu.c, from the datasheets:
 *
 *  X9C10x/X9C30x (Intersil/Renesas X9C102/103/104/503, FN8222.3, "AC Operation
 *  Characteristics" and "Pin Descriptions"; X9C303 shares the interface): CS, INC, U/D.
 *  A falling INC edge while CS is low moves the wiper one tap in the U/D direction (it
 *  stops at the ends, no wrap); CS rising while INC is high stores the wiper in EEPROM
 *  (then CS must stay high tCPH = 20 ms); CS rising with INC low does not store; power-up
 *  recalls the stored wiper.
 *
 *  MCP41x1/MCP42x1 (Microchip MCP413X/415X/423X/425X, DS22060B, Section 7 "Serial
 *  Interface" and Tables 1-2/1-3): 16-bit commands AAAA CC DD DDDDDDDD (address 0/1 volatile
 *  wiper 0/1, 4 TCON, 5 STATUS; C 00 write, 11 read; 01/10 are 8-bit increment/decrement,
 *  not used by the firmware); SDO shifts out 1111 11 CMDERR D8 then D7..D0 (CMDERR = 1
 *  for a valid command); SPI mode 0,0 or 1,1, MSB first. MCP41x1 parts have ONE SDI/SDO
 *  pin: a read puts the part's output on the host's MOSI line (host bits after C1C0 must be
 *  ones, driven weakly through the series resistor) and runs at most at 250 kHz (Table 1-3).
 *
 * A violation of any check is an ERR line (the Python side raises it as an error).
 */
#include "parts.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NS(c) ((double)(c) * 1e9 / 16e6)

enum { C_MIN, C_MAX };
typedef struct {
    const char *name;
    const char *source;
    int kind;           /* C_MIN: measured >= limit; C_MAX: measured <= limit */
    double limit;       /* ns, or Hz for frequencies */
    long count;
    double worst;
} check_t;

enum {
    X_TCI, X_TID, X_TDI, X_TIL, X_TIH, X_TIC, X_TCPH, X_TCPH_STORE, X_TCYC, X_TPU,
    M_TCSSR, M_FSCK, M_FSCK_READ, M_TSCK_READ, M_TCSH_SCK, M_TCS_HOLD, N_CHECKS
};

static check_t checks[N_CHECKS] = {
    [X_TCI] = {"x9c.tCI CS to INC setup", "FN8222.3 AC char.", C_MIN, 100, 0, 0},
    [X_TID] = {"x9c.tID INC high to U/D change", "FN8222.3 AC char.", C_MIN, 100, 0, 0},
    [X_TDI] = {"x9c.tDI U/D to INC setup", "FN8222.3 AC char.", C_MIN, 2900, 0, 0},
    [X_TIL] = {"x9c.tIL INC low period", "FN8222.3 AC char.", C_MIN, 1000, 0, 0},
    [X_TIH] = {"x9c.tIH INC high period", "FN8222.3 AC char.", C_MIN, 1000, 0, 0},
    [X_TIC] = {"x9c.tIC INC inactive to CS inactive", "FN8222.3 AC char.", C_MIN, 1000, 0, 0},
    [X_TCPH] = {"x9c.tCPH CS deselect (no store)", "FN8222.3 AC char.", C_MIN, 100, 0, 0},
    [X_TCPH_STORE] = {"x9c.tCPH CS deselect (store)", "FN8222.3 AC char.", C_MIN, 20e6, 0, 0},
    [X_TCYC] = {"x9c.tCYC INC cycle", "FN8222.3 AC char.", C_MIN, 2000, 0, 0},
    [X_TPU] = {"x9c.tPU power-up to first INC", "FN8222.3 AC char.", C_MIN, 500e3, 0, 0},
    [M_TCSSR] = {"mcp.TcsA2scH CS active to SCK rise", "DS22060B Tab. 1-2/1-3", C_MIN, 60, 0, 0},
    [M_FSCK] = {"mcp.FSCK write/read (separate SDO)", "DS22060B Tab. 1-2", C_MAX, 10e6, 0, 0},
    [M_FSCK_READ] = {"mcp.FSCK read on shared SDI/SDO", "DS22060B Tab. 1-3", C_MAX, 250e3, 0, 0},
    [M_TSCK_READ] = {"mcp.TscH/TscL read on shared SDI/SDO", "DS22060B Tab. 1-3", C_MIN, 1800, 0, 0},
    [M_TCSH_SCK] = {"mcp.TscH2csI CS inactive after SCK fall", "DS22060B Tab. 1-2/1-3", C_MIN, 100, 0, 0},
    [M_TCS_HOLD] = {"mcp.TcsA2csI CS inactive to active", "DS22060B Tab. 1-2/1-3", C_MIN, 50, 0, 0},
};

static part_config_t cfg;
static int x9c, mcp42;

static void error(const char *part, int ch, const char *fmt, ...)
{
    char text[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    side_line("ERR %s %d %s (cycle %llu)", part, ch, text, (unsigned long long)now_cycles());
}

static void check(int id, double measured, int ch)
{
    check_t *c = &checks[id];
    if (c->count == 0 || (c->kind == C_MIN ? measured < c->worst : measured > c->worst)) c->worst = measured;
    c->count++;
    int bad = c->kind == C_MIN ? measured < c->limit : measured > c->limit;
    if (bad) {
        error(x9c ? "X9C" : cfg.family, ch, "%s: %.6g %s the datasheet's %.6g (%s)", c->name, measured,
              c->kind == C_MIN ? "below" : "above", c->limit, c->source);
    }
}

void parts_stats(void)
{
    for (int i = 0; i < N_CHECKS; i++) {
        check_t *c = &checks[i];
        side_line("STAT %s|%s|%s|%ld|%.6g|%.6g", c->name, c->source, c->kind == C_MIN ? "min" : "max", c->count,
                  c->worst, c->limit);
    }
}

/* ------------------------------------------------------------------ state */
typedef struct {
    int cs;                      /* pin level, -1 unknown */
    avr_cycle_count_t t_fall, t_rise;
    int stored_last;             /* the last deselect stored */
    int wiper[2], eeprom;
    int moved;
    int inc_edges;               /* INC edges seen while selected */
    avr_cycle_count_t t_prev_inc_fall;
    int nbytes;                  /* MCP: bytes in this frame */
    uint8_t cmd;
    int cmd_valid;
    avr_cycle_count_t t_last_spif;
} chip_t;

static chip_t chips[MAX_CS];
static int inc = -1, ud = -1;
static avr_cycle_count_t t_inc_rise, t_inc_fall, t_ud, t_power, t_inc_edge;
static int any_inc_edge;
static double f_sck;
static int xfer_chip = -1;
static uint8_t xfer_mosi;

static int channel_of(int chip, int addr) { return mcp42 ? chip * 2 + addr : chip; }

static void report_wiper(int chip, int addr)
{
    int ch = channel_of(chip, addr);
    if (ch < cfg.n_channels)
        side_line("WIPER %d %d %llu", ch, chips[chip].wiper[addr], (unsigned long long)now_cycles());
}

int parts_init(const part_config_t *c)
{
    cfg = *c;
    x9c = strcmp(cfg.family, "X9C") == 0;
    mcp42 = strcmp(cfg.family, "MCP42") == 0;
    if (!x9c && !mcp42 && strcmp(cfg.family, "MCP41") != 0) {
        fprintf(stderr, "unknown family %s\n", cfg.family);
        return -1;
    }
    if (x9c && (cfg.inc_port == 0 || cfg.ud_port == 0)) {
        fprintf(stderr, "X9C needs INC and U/D pins\n");
        return -1;
    }
    for (int k = 0; k < MAX_CS; k++) {
        chips[k].cs = -1;
        chips[k].eeprom = cfg.stored_code;
    }
    return 0;
}

void parts_power_up(void)
{
    t_power = now_cycles();
    for (int k = 0; k < cfg.n_cs; k++) {
        chip_t *p = &chips[k];
        if (x9c) {
            p->wiper[0] = p->eeprom; /* power-up recall */
        } else {
            p->wiper[0] = p->wiper[1] = cfg.max_code / 2; /* POR/BOR value 80h (8-bit) / 40h (7-bit) */
        }
        report_wiper(k, 0);
        if (mcp42) report_wiper(k, 1);
    }
}

/* The MCU reset: its pins become inputs, so a command in progress is cut off by the reset,
 * not by the firmware. Every line is "unknown" until the firmware drives it again. */
void parts_mcu_reset(void)
{
    xfer_chip = -1;
    for (int k = 0; k < cfg.n_cs; k++) {
        chips[k].cs = -1;
        chips[k].nbytes = 0;
        chips[k].moved = 0;
        chips[k].inc_edges = 0;
    }
    /* INC and U/D keep their last levels: simavr notifies a pin only when its level changes */
}

int parts_idle(void) { return 1; }

static int selected(int *count)
{
    int who = -1, n = 0;
    for (int k = 0; k < cfg.n_cs; k++)
        if (chips[k].cs == 0) {
            who = k;
            n++;
        }
    *count = n;
    return who;
}

/* ------------------------------------------------------------------ X9C */
static void x9c_cs(int k, int level, avr_cycle_count_t t)
{
    chip_t *p = &chips[k];
    if (level == 0) {
        if (p->cs == 1) check(p->stored_last ? X_TCPH_STORE : X_TCPH, NS(t - p->t_rise), k);
        p->t_fall = t;
        p->moved = 0;
        p->inc_edges = 0;
    } else if (p->cs == 0) {
        if (p->inc_edges) check(X_TIC, NS(t - t_inc_edge), k);
        p->stored_last = inc == 1;
        if (p->stored_last) {
            p->eeprom = p->wiper[0];
            side_line("STORE %d %d", k, p->eeprom);
        }
        if (p->moved) report_wiper(k, 0);
        p->t_rise = t;
    } else {
        p->t_rise = t;
    }
}

static void x9c_inc(int level, avr_cycle_count_t t)
{
    int n, k = selected(&n);
    if (n > 1) error("X9C", k, "INC edge with %d parts selected at once", n);
    if (k >= 0) {
        chip_t *p = &chips[k];
        if (p->inc_edges == 0) check(X_TCI, NS(t - p->t_fall), k);
        if (level == 0) {
            if (any_inc_edge && inc == 1) check(X_TIH, NS(t - t_inc_rise), k);
            check(X_TDI, NS(t - t_ud), k);
            check(X_TPU, NS(t - t_power), k);
            if (p->inc_edges && p->t_prev_inc_fall > p->t_fall) check(X_TCYC, NS(t - p->t_prev_inc_fall), k);
            p->t_prev_inc_fall = t;
            int w = p->wiper[0] + (ud ? 1 : -1);
            if (w < 0) w = 0;
            if (w > cfg.max_code) w = cfg.max_code;
            if (w != p->wiper[0]) p->moved = 1;
            p->wiper[0] = w;
        } else if (inc == 0 && t_inc_fall >= p->t_fall) {
            check(X_TIL, NS(t - t_inc_fall), k);
        }
        p->inc_edges++;
    }
    if (level) t_inc_rise = t;
    else t_inc_fall = t;
    t_inc_edge = t;
    any_inc_edge = 1;
    inc = level;
}

static void x9c_ud(int level, avr_cycle_count_t t)
{
    int n, k = selected(&n);
    if (k >= 0 && inc == 1) check(X_TID, NS(t - t_inc_rise), k);
    if (k >= 0 && inc == 0) error("X9C", k, "U/D changed while INC is low (the datasheet changes U/D with INC high)");
    ud = level;
    t_ud = t;
}

/* ------------------------------------------------------------------ MCP41x1/42x1 */
static void mcp_cs(int k, int level, avr_cycle_count_t t)
{
    chip_t *p = &chips[k];
    if (level == 0) {
        if (p->cs == 1) check(M_TCS_HOLD, NS(t - p->t_rise), k);
        p->t_fall = t;
        p->nbytes = 0;
    } else if (p->cs == 0) {
        if (p->nbytes) check(M_TCSH_SCK, NS(t - p->t_last_spif), k);
        if (p->nbytes % 2)
            error(cfg.family, k, "CS raised after %d bytes: a 16-bit command was cut short (DS22060B Sec. 7)",
                  p->nbytes);
        p->t_rise = t;
    } else {
        p->t_rise = t;
    }
}

void parts_spi_start(uint8_t mosi)
{
    if (x9c) return;
    avr_cycle_count_t t = now_cycles();
    uint8_t spcr = spi_reg(0), spsr = spi_reg(1);
    static const int div[4] = {4, 16, 64, 128};
    int d = div[spcr & 3];
    if (spsr & 1) d /= 2;
    f_sck = 16e6 / d;
    int n, k = selected(&n);
    xfer_chip = k;
    xfer_mosi = mosi;
    if (n != 1) {
        error(cfg.family, k, "SPI transfer with %d chips selected (expected 1)", n);
        xfer_chip = -1;
        return;
    }
    if (!(spcr & (1 << 4))) error(cfg.family, k, "SPI not in master mode");
    if (((spcr >> 3) & 1) != ((spcr >> 2) & 1))
        error(cfg.family, k, "SPI mode CPOL=%d CPHA=%d: the part supports modes 0,0 and 1,1 only", (spcr >> 3) & 1,
              (spcr >> 2) & 1);
    if (spcr & (1 << 5)) error(cfg.family, k, "SPI sends LSB first; the part expects MSB first");
    chip_t *p = &chips[k];
    if (p->nbytes == 0) check(M_TCSSR, NS(t - p->t_fall) + 0.5e9 / f_sck, k); /* mode 0: first rise half a period in */
}

static int reg_valid(int addr, int cmd)
{
    if (addr == 0 || (addr == 1 && mcp42)) return 1;
    if (addr == 4) return 1;              /* TCON: read and write */
    if (addr == 5) return cmd == 3;       /* STATUS: read only */
    return 0;
}

uint8_t parts_spi_byte(uint8_t mosi)
{
    (void)mosi;
    if (x9c || xfer_chip < 0) return 0xFF;
    int k = xfer_chip;
    chip_t *p = &chips[k];
    uint8_t v = xfer_mosi;
    uint8_t reply = 0xFF;
    int shared = !mcp42; /* MCP41x1: one SDI/SDO pin */
    p->t_last_spif = now_cycles();
    if (p->nbytes % 2 == 0) {
        int addr = v >> 4, cmd = (v >> 2) & 3;
        p->cmd = v;
        if (cmd == 1 || cmd == 2) {
            error(cfg.family, k, "8-bit increment/decrement command 0x%02X: not used by the firmware, not modelled",
                  v);
            p->cmd_valid = 0;
        } else {
            p->cmd_valid = reg_valid(addr, cmd);
            if (!p->cmd_valid) error(cfg.family, k, "invalid command byte 0x%02X (CMDERR: address %d)", v, addr);
        }
        int data8 = 1;
        if (cmd == 3 && p->cmd_valid && addr <= 1) data8 = (p->wiper[addr] >> 8) & 1;
        else if (cmd == 3) data8 = 1;
        reply = (uint8_t)(0xFC | (p->cmd_valid ? 0x02 : 0) | data8);
        if (cmd == 3) {
            check(shared ? M_FSCK_READ : M_FSCK, f_sck, k);
            if (shared) {
                check(M_TSCK_READ, 0.5e9 / f_sck, k);
                if ((v & 3) != 3)
                    error(cfg.family, k, "read: host drives 0 on the shared SDI/SDO pin during the part's bits "
                          "(command byte 0x%02X)", v);
            }
        } else {
            check(M_FSCK, f_sck, k);
        }
    } else {
        int addr = p->cmd >> 4, cmd = (p->cmd >> 2) & 3;
        int data = ((p->cmd & 3) << 8) | v;
        if (cmd == 3) {
            check(shared ? M_FSCK_READ : M_FSCK, f_sck, k);
            if (shared) {
                check(M_TSCK_READ, 0.5e9 / f_sck, k);
                if (v != 0xFF)
                    error(cfg.family, k, "read: host drives 0 on the shared SDI/SDO pin (data byte 0x%02X)", v);
            }
            if (p->cmd_valid && addr <= 1) reply = (uint8_t)(p->wiper[addr] & 0xFF);
            else if (addr == 4) reply = 0xFF;
            else reply = 0xF0;
        } else if (cmd == 0) {
            check(M_FSCK, f_sck, k);
            if (p->cmd_valid && addr <= 1) {
                if (data > cfg.max_code) {
                    error(cfg.family, k, "write of %d above full scale %d", data, cfg.max_code);
                } else {
                    p->wiper[addr] = data;
                    report_wiper(k, addr);
                }
            }
        }
    }
    p->nbytes++;
    return reply;
}

/* ------------------------------------------------------------------ pins */
void parts_pin(char port, int bit, int level)
{
    avr_cycle_count_t t = now_cycles();
    for (int k = 0; k < cfg.n_cs; k++) {
        if (cfg.cs_port[k] == port && cfg.cs_bit[k] == bit) {
            if (chips[k].cs == level) return;
            if (x9c) x9c_cs(k, level, t);
            else mcp_cs(k, level, t);
            chips[k].cs = level;
            return;
        }
    }
    if (!x9c) return;
    if (port == cfg.inc_port && bit == cfg.inc_bit && level != inc) x9c_inc(level, t);
    else if (port == cfg.ud_port && bit == cfg.ud_bit && level != ud) x9c_ud(level, t);
}
