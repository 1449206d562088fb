/*
 * lndp_mcu.c - the digipot board's real firmware (.elf) in an emulated ATmega328P (simavr).
 *
 * A test/simulation tool, built from source at run time by simulator/mcu/harness.py with
 * `cc $(pkg-config --cflags --libs simavr)`; it is not shipped in the wheel (simavr is GPL-3).
 *
 *   lndp_mcu FIRMWARE.elf FAMILY N_CHANNELS MAX_CODE STORED_CODE CS_PINS [INC_PIN UD_PIN]
 *       FAMILY X9C | MCP41 | MCP42;  CS_PINS "D2,D3,...,C3" (port letter + bit, chip order)
 *
 * - 16 MHz; UART0 bridged to a pty (its slave path is the first side-channel line); bytes
 *   from the host reach the UART at 115200 baud 8N1 (86.8 us a byte) of simulated time.
 * - Opening the pty's slave (the host opening the port) resets the MCU, as DTR does on an
 *   Uno/Nano; the firmware then boots and sends its ready line. The bootloader's wait is
 *   not simulated (the Python side charges it to the modelled clock).
 * - GPIO and SPI activity feed pin-level models of the digipots (parts.h): X9C10x/30x
 *   (INC, U/D, CS; EEPROM store, power-up recall) or MCP41x1/MCP42x1 (SPI commands,
 *   shared SDI/SDO pin on MCP41x1). Every datasheet timing minimum and command format they
 *   check is reported; a violation is an error line.
 * - Side channel (fd 3 duplicated from the original stdout; simavr's own chatter goes to
 *   stderr), one line each:  PTY <path> | RESET <cycle> | WIPER <ch> <code> <cycle> |
 *   STORE <ch> <code> | ERR <part> <ch> <text> | PONG <k> <cycle> <busy_ns> |
 *   STAT <name> <count> <min_ns> <limit_ns> <kind> | BYE
 * - Control on stdin: PING <k> | STATS | POWER (power-cycle the parts and the MCU) | QUIT |
 *   DTR (reset the MCU now: what opening the port does on an Uno) | EXPLICIT (reset only on
 *   DTR; without it, the harness resets when it sees the pty's slave opened, which a quick
 *   close + open can slip past)
 *
 * When the firmware is idle (every request line answered, nothing to send), the harness
 * blocks on its file descriptors instead of spinning: simulated time advances only while
 * something happens, so the MCU cycle count is the board's busy time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <avr_ioport.h>
#include <avr_spi.h>
#include <avr_uart.h>
#include <sim_avr.h>
#include <sim_elf.h>

#include "parts.h"
#include "switches.h"

#define F_CPU 16000000UL
#define HOST_BYTE_CYCLES ((avr_cycle_count_t)(F_CPU * 10ULL / 115200ULL)) /* 8N1 at 115200 */
#define SPDR_ADDR 0x4E
#define SPCR_ADDR 0x4C
#define SPSR_ADDR 0x4D

static avr_t *avr;
static FILE *side;
static int master = -1;
static avr_irq_t *uart_in;

static uint8_t inbuf[4096];
static size_t in_head, in_len;
static int feeding;            /* the pacing timer is armed */
static unsigned long nl_in, nl_out;
static avr_cycle_count_t last_tx;
static int port_open;
static int explicit_dtr;   /* resets only on DTR commands, not on pty open */
static long long busy_ns;      /* wall time spent running the core */

void side_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(side, fmt, ap);
    va_end(ap);
    fputc('\n', side);
    fflush(side);
}

avr_cycle_count_t now_cycles(void) { return avr->cycle; }

uint8_t spi_reg(int which) { return avr->data[which == 0 ? SPCR_ADDR : SPSR_ADDR]; }

/* ---------------------------------------------------------------- UART <-> pty */
static avr_cycle_count_t feed_byte(avr_t *a, avr_cycle_count_t when, void *param)
{
    (void)a;
    (void)param;
    if (!in_len) {
        feeding = 0;
        return 0;
    }
    uint8_t b = inbuf[in_head];
    in_head = (in_head + 1) % sizeof inbuf;
    in_len--;
    if (b == '\n') nl_in++;
    avr_raise_irq(uart_in, b);
    if (!in_len) {
        feeding = 0;
        return 0;
    }
    return when + HOST_BYTE_CYCLES;
}

static void uart_out(avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    uint8_t b = (uint8_t)value;
    last_tx = avr->cycle;
    switches_tx();
    if (b == '\n') nl_out++;
    if (port_open) {
        ssize_t r;
        do r = write(master, &b, 1);
        while (r < 0 && errno == EINTR);
    }
}

static void pull_input(void)
{
    uint8_t tmp[256];
    size_t room = sizeof inbuf - in_len;
    if (room > sizeof tmp) room = sizeof tmp;
    if (!room) return;
    ssize_t n = read(master, tmp, room);
    if (n <= 0) return;
    for (ssize_t i = 0; i < n; i++) inbuf[(in_head + in_len + (size_t)i) % sizeof inbuf] = tmp[i];
    in_len += (size_t)n;
    if (!feeding) {
        feeding = 1;
        avr_cycle_timer_register(avr, HOST_BYTE_CYCLES, feed_byte, NULL);
    }
}

static void mcu_reset(void)
{
    avr_reset(avr);
    avr_cycle_timer_cancel(avr, feed_byte, NULL);
    feeding = 0;
    in_head = in_len = 0;
    nl_in = 1; /* the ready line is due */
    nl_out = 0;
    tcflush(master, TCIOFLUSH);
    parts_mcu_reset();
    switches_reset();
    side_line("RESET %llu", (unsigned long long)avr->cycle);
}

/* ---------------------------------------------------------------- GPIO and SPI taps */
static void pin_changed(avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    intptr_t id = (intptr_t)param;
    char port = (char)('A' + (id >> 3));
    if (switches_pin(port, (int)(id & 7), (int)(value & 1))) return;
    parts_pin(port, (int)(id & 7), (int)(value & 1));
}

static void spdr_written(avr_t *a, avr_io_addr_t addr, uint8_t v, void *param)
{
    (void)a;
    (void)addr;
    (void)param;
    parts_spi_start(v);
}

static void spi_done(avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    avr_irq_t *spi_in = (avr_irq_t *)param;
    avr_raise_irq(spi_in, parts_spi_byte((uint8_t)value));
}

/* ---------------------------------------------------------------- control */
static void control(const char *line)
{
    if (!strncmp(line, "PING", 4)) {
        side_line("PONG %s %llu %lld", line + 5, (unsigned long long)avr->cycle, busy_ns);
    } else if (!strncmp(line, "STATS", 5)) {
        parts_stats();
        switches_stats();
    } else if (!strncmp(line, "DTR", 3)) {
        explicit_dtr = 1;
        port_open = 1;
        mcu_reset();
    } else if (!strncmp(line, "EXPLICIT", 8)) {
        explicit_dtr = 1;
    } else if (!strncmp(line, "POWER", 5)) {
        parts_power_up();
        switches_reset();
        mcu_reset();
    } else if (!strncmp(line, "QUIT", 4)) {
        parts_stats();
        switches_stats();
        side_line("BYE");
        exit(0);
    }
}

static void read_control(void)
{
    static char buf[256];
    static size_t len;
    ssize_t n = read(0, buf + len, sizeof buf - 1 - len);
    if (n == 0) exit(0); /* the Python side went away */
    if (n < 0) return;
    len += (size_t)n;
    char *nl;
    while ((nl = memchr(buf, '\n', len)) != NULL) {
        *nl = 0;
        control(buf);
        size_t used = (size_t)(nl - buf) + 1;
        memmove(buf, nl + 1, len - used);
        len -= used;
    }
    if (len == sizeof buf - 1) len = 0;
}

static int idle(void)
{
    if (in_len || feeding) return 0;
    /* a reply is due (a newline lost in an overflowing ring would leave it due: give up after 2 s) */
    if (nl_in != nl_out && avr->cycle - last_tx < 2 * F_CPU) return 0;
    return avr->cycle - last_tx > 2 * HOST_BYTE_CYCLES && parts_idle();
}

/* poll the pty and stdin; block up to timeout_ms */
static void service(int timeout_ms)
{
    struct pollfd fds[2] = {{master, POLLIN, 0}, {0, POLLIN, 0}};
    if (poll(fds, 2, timeout_ms) < 0) return;
    int hup = (fds[0].revents & POLLHUP) != 0;
    if (hup && port_open) {
        port_open = 0;
    } else if (!hup && !port_open) {
        port_open = 1; /* the host opened the port: DTR resets the board */
        if (!explicit_dtr) mcu_reset();
    }
    if (fds[0].revents & POLLIN) pull_input();
    if (fds[1].revents & (POLLIN | POLLHUP)) read_control();
    if (hup && timeout_ms > 0) usleep((useconds_t)timeout_ms * 1000); /* a hung-up pty polls at once */
}

static int parse_pin(const char *s, char *port, int *bit)
{
    if (!s || (s[0] != 'B' && s[0] != 'C' && s[0] != 'D') || s[1] < '0' || s[1] > '7') return -1;
    *port = s[0];
    *bit = s[1] - '0';
    return 0;
}

static long long wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: %s FW.elf FAMILY N MAX_CODE STORED_CODE CS_PINS [INC UD] [SW=PINS]\n", argv[0]);
        return 2;
    }
    int sfd = dup(1);
    dup2(2, 1); /* simavr prints to stdout: send it to stderr */
    side = fdopen(sfd, "w");

    part_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.family, sizeof cfg.family, "%s", argv[2]);
    cfg.n_channels = atoi(argv[3]);
    cfg.max_code = atoi(argv[4]);
    cfg.stored_code = atoi(argv[5]);
    char *pins = strdup(argv[6]);
    for (char *tok = strtok(pins, ","); tok && cfg.n_cs < MAX_CS; tok = strtok(NULL, ",")) {
        if (parse_pin(tok, &cfg.cs_port[cfg.n_cs], &cfg.cs_bit[cfg.n_cs]) < 0) {
            fprintf(stderr, "bad pin %s\n", tok);
            return 2;
        }
        cfg.n_cs++;
    }
    int pos = 0; /* positional INC UD after CS_PINS; SW=<pins> anywhere after them */
    for (int i = 7; i < argc; i++) {
        if (strncmp(argv[i], "SW=", 3) == 0) {
            if (switches_init(argv[i] + 3) < 0) {
                fprintf(stderr, "bad switch pins %s\n", argv[i]);
                return 2;
            }
        } else if (pos == 0 && i + 1 < argc && strncmp(argv[i + 1], "SW=", 3) != 0) {
            if (parse_pin(argv[i], &cfg.inc_port, &cfg.inc_bit) < 0 || parse_pin(argv[i + 1], &cfg.ud_port, &cfg.ud_bit) < 0) {
                fprintf(stderr, "bad INC/UD pin\n");
                return 2;
            }
            pos = 1;
            i++;
        }
    }
    if (parts_init(&cfg) < 0) return 2;

    elf_firmware_t fw;
    memset(&fw, 0, sizeof fw);
    if (elf_read_firmware(argv[1], &fw) != 0) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    avr = avr_make_mcu_by_name("atmega328p");
    if (!avr) return 2;
    avr_init(avr);
    fw.frequency = F_CPU;
    avr_load_firmware(avr, &fw);
    avr->frequency = F_CPU;

    uint32_t flags = 0;
    avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
    flags &= ~(uint32_t)(AVR_UART_FLAG_STDIO | AVR_UART_FLAG_POLL_SLEEP);
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    uart_in = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), uart_out, NULL);
    for (char port = 'B'; port <= 'D'; port++)
        for (int bit = 0; bit < 8; bit++)
            avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ(port), bit), pin_changed,
                                    (void *)(intptr_t)(((port - 'A') << 3) | bit));
    /* simavr declares the ATmega328P's single SPI without a name (0), newer ones as '0' */
    uint32_t spi_ctl = avr_io_getirq(avr, AVR_IOCTL_SPI_GETIRQ('0'), SPI_IRQ_INPUT) ? AVR_IOCTL_SPI_GETIRQ('0')
                                                                                     : AVR_IOCTL_SPI_GETIRQ(0);
    avr_irq_t *spi_in = avr_io_getirq(avr, spi_ctl, SPI_IRQ_INPUT);
    avr_irq_t *spi_out = avr_io_getirq(avr, spi_ctl, SPI_IRQ_OUTPUT);
    if (!spi_in || !spi_out || !uart_in) {
        fprintf(stderr, "simavr: no SPI or UART0 IRQs on this core\n");
        return 2;
    }
    avr_irq_register_notify(spi_out, spi_done, spi_in);
    avr_register_io_write(avr, SPDR_ADDR, spdr_written, NULL);

    master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
        perror("pty");
        return 2;
    }
    const char *slave_path = ptsname(master);
    int s = open(slave_path, O_RDWR | O_NOCTTY);
    struct termios t;
    if (s >= 0 && tcgetattr(s, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(s, TCSANOW, &t);
    }
    if (s >= 0) close(s);
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    side_line("PTY %s", slave_path);
    parts_power_up();

    unsigned n = 0;
    long long t0 = wall_ns();
    for (;;) {
        int state = avr_run(avr);
        if (state == cpu_Done || state == cpu_Crashed) {
            side_line("ERR mcu - the core stopped (state %d) at cycle %llu", state, (unsigned long long)avr->cycle);
            parts_stats();
            switches_stats();
            side_line("BYE");
            return 1;
        }
        if (++n < 4096) continue;
        n = 0;
        if (idle()) {
            busy_ns += wall_ns() - t0;
            service(port_open ? 50 : 5);
            t0 = wall_ns();
        } else {
            service(0);
        }
    }
}
