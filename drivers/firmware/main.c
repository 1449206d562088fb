/*
 * main.c - the digipot board's firmware for the ATmega328P (Arduino Uno / Nano), avr-libc.
 *
 * Register-level UART (115200 baud 8N1, U2X, receive interrupt into a 64-byte ring - the
 * size of the Arduino core's buffer, which the host protocol is designed around), SPI
 * (MCP41x1/MCP42x1, mode 0, f_osc/4) and GPIO (X9C up/down parts: INC and U/D shared, one
 * CS per part). The protocol itself lives in lndp.c (no hardware access).
 *
 * Build-time configuration (Makefile: make FAMILY=X9C CHANNELS=16 MAX_CODE=99 ...):
 *   FAMILY_X9C   X9C10x/X9C30x: 100 taps, up/down, no readback, EEPROM (STORE)
 *   FAMILY_MCP41 MCP4131/MCP4151: one wiper per chip, SPI, readback (separate SDO wired)
 *   FAMILY_MCP42 MCP4231/MCP4251: two wipers per chip, SPI, readback
 *
 * Pins (Arduino names; the table in README.md, checked by tests/test_firmware_pins.py):
 * X9C: CS of chip k on D2..D13 then A0..A3, INC on A4, U/D on A5. SPI parts: CS on D2..D9
 * then A0..A5, D11 MOSI, D12 MISO, D13 SCK (D10 is the SPI master's SS, an output).
 * See cs_port[]/cs_bit[].
 *
 * Analog switches (SWITCHES=n, default 0; drivers/PROTOCOL.md command X): switch k's control
 * input is on the chip-select pin slot right after the digipots' (slot N_CS + k of
 * cs_port[]/cs_bit[]), driven high to close an active-high switch (ADG412, Table 3 of its
 * data sheet), low to open it; each control input has a 10 kOhm pull-down so the switch is
 * open while the MCU is in reset. hw_switch waits SWITCH_SETTLE_US (>= the switch's tON/tOFF:
 * ADG412 250 ns / 125 ns max) before the board acknowledges.
 */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <util/delay.h>

#include "lndp.h"

#ifndef CHANNELS
#define CHANNELS 16
#endif
#ifndef MAX_CODE
#define MAX_CODE 99
#endif
#ifndef POWER_UP_CODE
#define POWER_UP_CODE 49
#endif

#ifndef SWITCHES
#define SWITCHES 0
#endif
#ifndef SWITCH_SETTLE_US
#define SWITCH_SETTLE_US 1
#endif

#if !defined(FAMILY_X9C) && !defined(FAMILY_MCP41) && !defined(FAMILY_MCP42)
#define FAMILY_X9C /* the default (also what an Arduino IDE build gets; edit here to change) */
#endif

#if defined(FAMILY_X9C)
#define FAMILY "X9C"
#define READBACK 0
#define NONVOLATILE 1
#define N_CS CHANNELS
#elif defined(FAMILY_MCP41)
#define FAMILY "MCP41"
#define READBACK 1
#define NONVOLATILE 0
#define N_CS CHANNELS
#elif defined(FAMILY_MCP42)
#define FAMILY "MCP42"
#define READBACK 1
#define NONVOLATILE 0
#define N_CS ((CHANNELS + 1) / 2)
#endif

#if CHANNELS > LNDP_MAX_CHANNELS
#error "at most 16 channels"
#endif
#if !defined(FAMILY_X9C) && N_CS > 14
#error "SPI parts: at most 14 chip selects (D2-D9, A0-A5); use MCP42 (two wipers a chip)"
#endif
#if defined(FAMILY_X9C) && N_CS > 16
#error "X9C: at most 16 chip selects"
#endif
#if SWITCHES > LNDP_MAX_SWITCHES
#error "at most 8 switches"
#endif
#if defined(FAMILY_X9C) && N_CS + SWITCHES > 16
#error "X9C: the switches take the chip-select pins after the digipots' (16 in all): fewer CHANNELS or SWITCHES"
#endif
#if !defined(FAMILY_X9C) && N_CS + SWITCHES > 14
#error "SPI parts: the switches take the chip-select pins after the digipots' (14 in all): fewer CHANNELS or SWITCHES"
#endif

/* chip-select pins, in channel (chip) order */
#if defined(FAMILY_X9C)
static volatile uint8_t *const cs_port[16] = {&PORTD, &PORTD, &PORTD, &PORTD, &PORTD, &PORTD, &PORTB, &PORTB,
                                              &PORTB, &PORTB, &PORTB, &PORTB, &PORTC, &PORTC, &PORTC, &PORTC};
static const uint8_t cs_bit[16] = {PD2, PD3, PD4, PD5, PD6, PD7, PB0, PB1, PB2, PB3, PB4, PB5, PC0, PC1, PC2, PC3};
#define INC_BIT PC4
#define UD_BIT PC5
#else
static volatile uint8_t *const cs_port[14] = {&PORTD, &PORTD, &PORTD, &PORTD, &PORTD, &PORTD, &PORTB, &PORTB,
                                              &PORTC, &PORTC, &PORTC, &PORTC, &PORTC, &PORTC};
static const uint8_t cs_bit[14] = {PD2, PD3, PD4, PD5, PD6, PD7, PB0, PB1, PC0, PC1, PC2, PC3, PC4, PC5};
#endif

static inline volatile uint8_t *ddr_of(volatile uint8_t *port) { return port - 1; } /* DDRx sits below PORTx */

static void cs(uint8_t chip, uint8_t level)
{
    if (level) *cs_port[chip] |= (uint8_t)(1 << cs_bit[chip]);
    else *cs_port[chip] &= (uint8_t)~(1 << cs_bit[chip]);
}

/* ---------------------------------------------------------------- analog switches */
static void switches_init(void)
{
#if SWITCHES > 0
    for (uint8_t k = 0; k < SWITCHES; k++) {
        cs(N_CS + k, 0); /* open */
        *ddr_of(cs_port[N_CS + k]) |= (uint8_t)(1 << cs_bit[N_CS + k]);
    }
#endif
}

void hw_switch(uint8_t mask)
{
#if SWITCHES > 0
    for (uint8_t k = 0; k < SWITCHES; k++) cs(N_CS + k, (uint8_t)((mask >> k) & 1));
    _delay_us(SWITCH_SETTLE_US);
#else
    (void)mask; /* no switches: the parser answers NOTSUP before calling this */
#endif
}

/* ---------------------------------------------------------------- UART */
#define RX_RING 64
static volatile uint8_t rx_buf[RX_RING];
static volatile uint8_t rx_head, rx_tail, rx_overflow;

ISR(USART_RX_vect)
{
    uint8_t b = UDR0;
    uint8_t next = (uint8_t)((rx_head + 1) % RX_RING);
    if (next == rx_tail) {
        rx_overflow = 1; /* the ring is full: the byte is lost */
        return;
    }
    rx_buf[rx_head] = b;
    rx_head = next;
}

static void uart_init(void)
{
    UCSR0A = (uint8_t)(1 << U2X0);
    UBRR0 = (uint16_t)((F_CPU / (8UL * 115200UL)) - 1); /* 16 with F_CPU = 16 MHz: 115200 +2.1 % */
    UCSR0C = (uint8_t)((1 << UCSZ01) | (1 << UCSZ00));  /* 8N1 */
    UCSR0B = (uint8_t)((1 << RXEN0) | (1 << TXEN0) | (1 << RXCIE0));
}

static void uart_write(const char *s, uint8_t n)
{
    while (n--) {
        while (!(UCSR0A & (1 << UDRE0))) {
        }
        UDR0 = (uint8_t)*s++;
    }
}

/* ---------------------------------------------------------------- digipots */
#if defined(FAMILY_X9C)
/* One X9C: INC falling edge moves the wiper one tap in the U/D direction. Deselecting with
 * INC low does not store (X9C datasheet: storing happens when CS rises while INC is high). */
static void x9c_step(uint8_t chip, uint8_t up, uint16_t steps)
{
    if (!steps) return;
    if (up) PORTC |= (uint8_t)(1 << UD_BIT);
    else PORTC &= (uint8_t)~(1 << UD_BIT);
    PORTC |= (uint8_t)(1 << INC_BIT);
    cs(chip, 0);
    _delay_us(1);
    while (steps--) {
        PORTC |= (uint8_t)(1 << INC_BIT);
        _delay_us(1);
        PORTC &= (uint8_t)~(1 << INC_BIT); /* falling edge: one tap */
        _delay_us(1);
    }
    cs(chip, 1); /* INC is low: no store */
    _delay_us(1);
    PORTC |= (uint8_t)(1 << INC_BIT);
}

void hw_set(uint8_t ch, uint16_t from, uint16_t to)
{
    if (to > from) x9c_step(ch, 1, (uint16_t)(to - from));
    else x9c_step(ch, 0, (uint16_t)(from - to));
}

uint16_t hw_read(uint8_t ch, uint16_t recorded)
{
    (void)ch;
    return recorded; /* X9C cannot be read back: the firmware's record */
}

void hw_store(uint8_t ch)
{
    PORTC |= (uint8_t)(1 << INC_BIT);
    cs(ch, 0);
    _delay_us(1);
    cs(ch, 1); /* CS rises while INC is high: store */
    _delay_ms(20); /* EEPROM store cycle */
}

static void hw_init(void)
{
    DDRC |= (uint8_t)((1 << INC_BIT) | (1 << UD_BIT));
    for (uint8_t k = 0; k < N_CS; k++) {
        cs(k, 1);
        *ddr_of(cs_port[k]) |= (uint8_t)(1 << cs_bit[k]);
    }
    /* homing: the wiper position after power-up is the last stored one, unknown here; run
     * to 0, then up to the power-up code (no store). First wait for the part's power-up
     * (tPU, FN8222.3: 500 us; a board flashed without a bootloader starts at once). */
    _delay_ms(1);
    for (uint8_t k = 0; k < N_CS; k++) {
        x9c_step(k, 0, MAX_CODE + 1);
        x9c_step(k, 1, POWER_UP_CODE);
    }
}
#else
static uint8_t spi(uint8_t b)
{
    SPDR = b;
    while (!(SPSR & (1 << SPIF))) {
    }
    return SPDR;
}

/* MCP4xx1 16-bit command: AAAA CC DD DDDDDDDD (address, 00 write / 11 read, 10-bit data) */
static uint16_t mcp_cmd(uint8_t ch, uint8_t command, uint16_t data)
{
#if defined(FAMILY_MCP42)
    uint8_t chip = ch / 2, addr = ch % 2;
#else
    uint8_t chip = ch, addr = 0;
#endif
    cs(chip, 0);
    uint8_t hi = spi((uint8_t)((addr << 4) | (command << 2) | ((data >> 8) & 0x03)));
    uint8_t lo = spi((uint8_t)(data & 0xFF));
    cs(chip, 1);
    /* reply: 1111 11 CMDERR D8 | D7..D0 (DS22060B Fig. 6-4): bit 1 of hi is the command-valid
     * flag (1 on a good command), only bit 0 is data */
    return (uint16_t)(((hi & 0x01) << 8) | lo);
}

void hw_set(uint8_t ch, uint16_t from, uint16_t to)
{
    (void)from;
    mcp_cmd(ch, 0x0, to);
}

uint16_t hw_read(uint8_t ch, uint16_t recorded)
{
    (void)recorded;
#if defined(FAMILY_MCP41)
    /* one SDI/SDO pin: a read runs at most at 250 kHz (DS22060B Table 1-3) -> f_osc/128 */
    SPCR |= (uint8_t)((1 << SPR1) | (1 << SPR0));
    uint16_t v = mcp_cmd(ch, 0x3, 0x3FF);
    SPCR &= (uint8_t)~((1 << SPR1) | (1 << SPR0));
    return v;
#else
    return mcp_cmd(ch, 0x3, 0x3FF);
#endif
}

void hw_store(uint8_t ch) { (void)ch; }

static void hw_init(void)
{
    /* SS (D10) must be an output for the SPI master; MOSI, SCK outputs */
    DDRB |= (uint8_t)((1 << PB2) | (1 << PB3) | (1 << PB5));
    PORTB |= (uint8_t)(1 << PB2);
    for (uint8_t k = 0; k < N_CS; k++) {
        cs(k, 1);
        *ddr_of(cs_port[k]) |= (uint8_t)(1 << cs_bit[k]);
    }
    SPCR = (uint8_t)((1 << SPE) | (1 << MSTR)); /* mode 0, f_osc/4 */
    for (uint8_t ch = 0; ch < CHANNELS; ch++) mcp_cmd(ch, 0x0, POWER_UP_CODE);
}
#endif

static const lndp_config_t config = {FAMILY, CHANNELS, MAX_CODE, POWER_UP_CODE, READBACK, NONVOLATILE, SWITCHES};
static lndp_t proto;

int main(void)
{
    static char out[LNDP_MAX_REPLY + 1];
    switches_init();
    hw_init();
    lndp_init(&proto, &config);
    uart_init();
    sei();
    uart_write(out, lndp_ready(out));
    for (;;) {
        if (rx_overflow) {
            cli();
            rx_overflow = 0;
            sei();
            lndp_overflow(&proto);
        }
        if (rx_tail == rx_head) continue;
        uint8_t b = rx_buf[rx_tail];
        rx_tail = (uint8_t)((rx_tail + 1) % RX_RING);
        uint8_t n = lndp_feed(&proto, b, out);
        if (n) uart_write(out, n);
    }
}
