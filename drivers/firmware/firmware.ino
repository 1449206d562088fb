// Thin Arduino IDE wrapper. The firmware is plain C against avr-libc (main.c, lndp.c in this
// folder); main.c defines main(), which takes the place of the Arduino core's, and its own
// UART interrupt (do not use Serial). The part defaults to X9C, 16 channels, max code 99:
// change FAMILY_*, CHANNELS, MAX_CODE and POWER_UP_CODE at the top of main.c, or build with
// the Makefile (make FAMILY=MCP42 MAX_CODE=256 POWER_UP_CODE=128).
