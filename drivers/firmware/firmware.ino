// Thin Arduino IDE wrapper. The IDE wants the sketch named after its folder (firmware/firmware.ino)
// and compiles every .c file beside it: the firmware is plain C against avr-libc (main.c, lndp.c);
// main.c defines main(), which takes the place of the Arduino core's, and its own UART interrupt
// (do not use Serial). The part defaults to X9C, 16 channels, max code 99: change FAMILY_*,
// CHANNELS, MAX_CODE and POWER_UP_CODE at the top of main.c, or build with the Makefile
// (make FAMILY=MCP42 MAX_CODE=256 POWER_UP_CODE=128). The parser's host build lives in host/,
// out of the IDE's way.
