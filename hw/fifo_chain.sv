// fifo_chain: a deep FIFO as a chain of hw/fifo.sv FIFOs, each memory one block RAM deep.
//
// Function  : m_axis carries the s_axis beats unchanged and in order, as hw/fifo.sv; up to DEPTH
//             beats are held (NSEG * SDEPTH >= DEPTH, and each FIFO's slice or output register).
// Why       : a memory deeper than one block RAM (of its width) is read through a multiplexer
//             between the blocks, which Yosys places between the blocks' reads and the register
//             after them, so no block's output register can take it (CNV-w1a1 at FINN's folding:
//             a FIFO of 1,117 x 32 bits, a 5.6 ns read, then the multiplexer: its critical path at
//             110.9 MHz on ECP5). In a chain each FIFO reads its one block through the block's own
//             output register (hw/fifo.sv OUT_REG, flows/implement/outreg.py); between two FIFOs
//             the stream is a register (the first's output) into a block RAM's write port, and the
//             first's pop waits on the second's full flag, a register.
// Structure : NSEG = ceil(DEPTH / SEG_D) FIFOs of SDEPTH = ceil(DEPTH / NSEG) words; the slice
//             (OUT_SLICE) after the last only. DEPTH <= SEG_D (or SEG_D = 0): one FIFO.
// Latency   : NSEG * (2 + OUT_REG) + OUT_SLICE cycles from an input beat to its output beat when
//             the chain was empty.
// Throughput: one beat per cycle in and out, when SDEPTH >= 4 with OUT_REG (a shallower FIFO with
//             OUT_REG takes 4 cycles per 3 beats); the compiler's SEG_D is hundreds of words.
// Ready     : s_axis_tready is the first FIFO's full flag, a register; m_axis_* are the last's.
//
// Parameters:
//   DATA_W, DEPTH, USE_RAM, OUT_REG, OUT_SLICE  as in hw/fifo.sv
//   SEG_D    the most words of one FIFO of the chain (the compiler: the deepest block RAM shape
//            of DATA_W bits, memfiles.fifo_segment_depth); 0: one FIFO

`resetall
`timescale 1ns / 1ps
`default_nettype none

module fifo_chain #(
    parameter int DATA_W    = 8,
    parameter int DEPTH     = 40,
    parameter bit USE_RAM   = 1'b1,
    parameter bit OUT_REG   = USE_RAM,
    parameter bit OUT_SLICE = 1'b0,
    parameter int SEG_D     = 16
) (
    input  wire logic              clk,
    input  wire logic              rst,

    input  wire logic [DATA_W-1:0] s_axis_tdata,
    input  wire logic              s_axis_tvalid,
    output wire logic              s_axis_tready,

    output wire logic [DATA_W-1:0] m_axis_tdata,
    output wire logic              m_axis_tvalid,
    input  wire logic              m_axis_tready
);

    if (SEG_D < 0) begin : g_bad_seg
        $fatal(1, "%m: SEG_D (%0d) must be 0 (one FIFO) or more", SEG_D);
    end
    if (SEG_D > 0 && SEG_D < 2) begin : g_bad_seg_depth
        $fatal(1, "%m: SEG_D (%0d) must be at least 2 (hw/fifo.sv's least DEPTH)", SEG_D);
    end

    localparam int NSEG   = SEG_D > 0 && DEPTH > SEG_D ? (DEPTH + SEG_D - 1) / SEG_D : 1;
    localparam int SDEPTH = (DEPTH + NSEG - 1) / NSEG;

    // the streams between the FIFOs: FIFO i takes stream i and gives stream i + 1
    logic [(NSEG+1)*DATA_W-1:0] d;
    logic [NSEG:0]              v, r;
    assign d[0 +: DATA_W] = s_axis_tdata;
    assign v[0]           = s_axis_tvalid;
    assign s_axis_tready  = r[0];
    for (genvar i = 0; i < NSEG; i++) begin : g_seg
        fifo #(
            .DATA_W(DATA_W), .DEPTH(SDEPTH), .USE_RAM(USE_RAM), .OUT_REG(OUT_REG),
            .OUT_SLICE(i == NSEG - 1 ? OUT_SLICE : 1'b0)
        ) u_fifo (
            .clk(clk), .rst(rst),
            .s_axis_tdata(d[i*DATA_W +: DATA_W]), .s_axis_tvalid(v[i]), .s_axis_tready(r[i]),
            .m_axis_tdata(d[(i+1)*DATA_W +: DATA_W]), .m_axis_tvalid(v[i+1]), .m_axis_tready(r[i+1])
        );
    end
    assign m_axis_tdata  = d[NSEG*DATA_W +: DATA_W];
    assign m_axis_tvalid = v[NSEG];
    assign r[NSEG]       = m_axis_tready;

endmodule

`resetall
