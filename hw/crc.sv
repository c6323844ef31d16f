// crc: one byte step of a CRC of WIDTH bits, most significant bit first (no reflection).
//
// Function  : crc_out = the CRC register after the byte `data` is shifted in, MSB first, from the
//             register value crc_in. The initial value and any final XOR are the caller's: the
//             host link (qnnflow/host.py) uses WIDTH 16, POLY 0x1021, initial value 0xFFFF and no
//             final XOR ("CRC-16/CCITT-FALSE", check value 0x29B1 for "123456789"). Without a final
//             XOR, a message followed by its CRC (most significant byte first) leaves 0 in the
//             register, which is how the frame decoder checks a frame.
// Latency   : combinational (8 XOR stages, folded by synthesis into a few LUTs per output bit).
//
// Parameters:
//   WIDTH  CRC width in bits (8..32)
//   POLY   the generator polynomial without its x^WIDTH term (e.g. 'h1021 for x^16+x^12+x^5+1)
//
// qnnflow.host.crc16 is the same function in Python; the board-top bench checks that they agree.

`resetall
`timescale 1ns / 1ps
`default_nettype none

module crc #(
    parameter int          WIDTH = 16,
    parameter int unsigned POLY  = 32'h1021
) (
    input  wire logic [WIDTH-1:0] crc_in,
    input  wire logic [7:0]       data,
    output wire logic [WIDTH-1:0] crc_out
);

    initial begin
        if (WIDTH < 8 || WIDTH > 32) $fatal(1, "%m: WIDTH (%0d) must be 8..32 (a byte is shifted in per step)", WIDTH);
        if (WIDTH < 32 && (POLY >> WIDTH) != 0)
            $fatal(1, "%m: POLY (%0h) must fit in WIDTH (%0d) bits (without the x^WIDTH term)", POLY, WIDTH);
    end

    localparam logic [WIDTH-1:0] P = WIDTH'(POLY);

    logic [WIDTH-1:0] c;

    always_comb begin
        c = crc_in ^ (WIDTH'(data) << (WIDTH - 8));
        for (int i = 0; i < 8; i++) begin
            c = c[WIDTH-1] ? {c[WIDTH-2:0], 1'b0} ^ P : {c[WIDTH-2:0], 1'b0};
        end
    end

    assign crc_out = c;

endmodule

`resetall
