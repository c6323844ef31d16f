// crc8: one byte step of the CRC-8 of the UART host link (polynomial x^8 + x^2 + x + 1, 0x07;
// initial value 0, no reflection, no final XOR: "CRC-8/SMBUS").
//
// Function  : crc_out = the CRC after `data` is appended to a message whose CRC is crc_in.
// Latency   : combinational (8 XOR stages folded by synthesis into about 8 LUTs per output bit).
//
// qnnflow.host.crc8 is the same function in Python; the board-top bench checks that they agree.

`resetall
`timescale 1ns / 1ps
`default_nettype none

module crc8 (
    input  wire logic [7:0] crc_in,
    input  wire logic [7:0] data,
    output wire logic [7:0] crc_out
);

    logic [7:0] c;

    always_comb begin
        c = crc_in ^ data;
        for (int i = 0; i < 8; i++) begin
            c = c[7] ? {c[6:0], 1'b0} ^ 8'h07 : {c[6:0], 1'b0};
        end
    end

    assign crc_out = c;

endmodule

`resetall
