// Batch harness of the stitched accelerator (qnnflow.sim.accel): a Verilator C++ main that feeds
// whole test sets from files, as fast as the model evaluates.
//
// The model is `accelerator_probe` (rtl/probe.sv): the accelerator plus the valid / ready bits of
// every internal stream. Per cycle the harness
//   1. drives s_axis (the next input beat, unless the frame may not start yet or a random input
//      idle is drawn) and m_axis_tready (1, unless a random stall is drawn),
//   2. evaluates with clk low and samples which handshakes happen at the coming rising edge,
//      on the boundary and on every internal stream (probes),
//   3. raises clk and evaluates.
// It counts handshakes per stream, keeps the largest fill (in minus out beats) of each FIFO named
// by --fifo-pairs, and records per frame the cycles of its first input beat and last output beat.
// A stream that stops (no handshake anywhere for --max-idle cycles while a frame is in flight or
// an input beat is offered) or a run past --max-cycles ends the run with the status "deadlock" or
// "timeout" and every stream's valid / ready bits, which qnnflow.sim.accel turns into a message.
//
// Files (uint32 little-endian words, ceil(width / 32) words per beat, low word first):
//   --in FILE       frames * in-beats beats;      --out FILE   frames * out-beats beats (written)
//   --timing FILE   written: per frame int64 first_in, last_in, first_out, last_out (cycles)
//   --report FILE   written: key = value lines (status, cycles, counts, FIFO fills, probes, and
//                   the stalls applied: input_idles = cycles a beat was ready but an idle drawn,
//                   output_refused = cycles m_axis_tvalid was high and m_axis_tready held low)
// Options: --frames N --in-beats B --in-words W --out-beats B --out-words W --streams N
//          --fifo-pairs "in:out,in:out,..." (stream indices) --period P (cycles per frame of
//          paced input: input beats spread evenly, 0 = as fast as accepted) --in-idle P --out-stall P (probabilities, 0..1)
//          --seed S --max-idle C --max-cycles C --progress F (print every F frames, 0 = never)

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "Vaccelerator_probe.h"
#include "verilated.h"

namespace {

// -- access to ports of any width (CData .. QData, or VlWide for more than 64 bits) -------------
template <typename T>
void set_port(T& port, const uint32_t* w, int words) {
    uint64_t v = w[0];
    if (words > 1) v |= static_cast<uint64_t>(w[1]) << 32;
    port = static_cast<T>(v);
}
template <std::size_t N>
void set_port(VlWide<N>& port, const uint32_t* w, int words) {
    for (std::size_t i = 0; i < N; ++i) port[i] = i < static_cast<std::size_t>(words) ? w[i] : 0;
}
template <typename T>
void get_port(const T& port, uint32_t* w, int words) {
    uint64_t v = static_cast<uint64_t>(port);
    w[0] = static_cast<uint32_t>(v);
    if (words > 1) w[1] = static_cast<uint32_t>(v >> 32);
}
template <std::size_t N>
void get_port(const VlWide<N>& port, uint32_t* w, int words) {
    for (int i = 0; i < words; ++i) w[i] = static_cast<std::size_t>(i) < N ? port[i] : 0;
}
template <typename T>
bool bit_of(const T& v, int i) {
    return (static_cast<uint64_t>(v) >> i) & 1u;
}
template <std::size_t N>
bool bit_of(const VlWide<N>& v, int i) {
    return (v[i >> 5] >> (i & 31)) & 1u;
}

// -- small utilities -----------------------------------------------------------------------------
struct Rng {  // xorshift64*: reproducible stalls from --seed
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed * 2654435761u + 88172645463325252ull) {}
    double next() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return static_cast<double>((s * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
    }
};

[[noreturn]] void fail(const std::string& msg) {
    std::fprintf(stderr, "accel harness: %s\n", msg.c_str());
    std::exit(2);
}

std::vector<uint32_t> read_words(const std::string& path, std::size_t count) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("cannot read " + path);
    std::vector<uint32_t> v(count);
    f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(count * 4));
    if (static_cast<std::size_t>(f.gcount()) != count * 4)
        fail(path + ": expected " + std::to_string(count * 4) + " bytes");
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    std::map<std::string, std::string> opt;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strncmp(argv[i], "--", 2) != 0) fail(std::string("unexpected argument ") + argv[i]);
        opt[argv[i] + 2] = argv[i + 1];
    }
    auto num = [&](const char* k, double d) { return opt.count(k) ? std::atof(opt[k].c_str()) : d; };
    auto need = [&](const char* k) {
        if (!opt.count(k)) fail(std::string("missing --") + k);
        return opt[k];
    };
    const long frames = static_cast<long>(num("frames", 0));
    const int in_beats = static_cast<int>(num("in-beats", 0)), in_words = static_cast<int>(num("in-words", 1));
    const int out_beats = static_cast<int>(num("out-beats", 0)), out_words = static_cast<int>(num("out-words", 1));
    const int nstreams = static_cast<int>(num("streams", 0));
    const long period = static_cast<long>(num("period", 0));
    const double p_idle = num("in-idle", 0), p_stall = num("out-stall", 0);
    const long max_idle = static_cast<long>(num("max-idle", 100000));
    const long long max_cycles = static_cast<long long>(num("max-cycles", 1e15));
    const long progress = static_cast<long>(num("progress", 0));
    if (frames < 1 || in_beats < 1 || out_beats < 1) fail("need --frames, --in-beats, --out-beats >= 1");

    std::vector<std::pair<int, int>> pairs;  // FIFO (input stream, output stream)
    if (opt.count("fifo-pairs") && !opt["fifo-pairs"].empty()) {
        std::string s = opt["fifo-pairs"];
        std::size_t pos = 0;
        while (pos < s.size()) {
            std::size_t comma = s.find(',', pos);
            std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
            std::size_t colon = item.find(':');
            pairs.emplace_back(std::atoi(item.substr(0, colon).c_str()), std::atoi(item.substr(colon + 1).c_str()));
            if (comma == std::string::npos) break;
            pos = comma + 1;
        }
    }

    const std::vector<uint32_t> in = read_words(need("in"), static_cast<std::size_t>(frames) * in_beats * in_words);
    std::vector<uint32_t> out(static_cast<std::size_t>(frames) * out_beats * out_words, 0);
    std::vector<int64_t> timing(static_cast<std::size_t>(frames) * 4, -1);

    auto ctx = std::make_unique<VerilatedContext>();
    ctx->randReset(2);
    ctx->randSeed(static_cast<int>(num("seed", 1)) % 1000000 + 1);
    ctx->commandArgs(0, static_cast<const char**>(nullptr));
    auto top = std::make_unique<Vaccelerator_probe>(ctx.get());
    Rng rng(static_cast<uint64_t>(num("seed", 1)));

    auto tick = [&]() {
        top->clk = 1;
        ctx->timeInc(5);
        top->eval();
        top->clk = 0;
        ctx->timeInc(5);
    };
    top->clk = 0;
    top->rst = 1;
    top->s_axis_tvalid = 0;
    top->s_axis_tlast = 0;
    top->m_axis_tready = 0;
    top->eval();
    for (int i = 0; i < 8; ++i) {
        tick();
        top->eval();
    }
    top->rst = 0;

    std::vector<uint64_t> count(static_cast<std::size_t>(nstreams), 0);
    std::vector<int64_t> fill_max(pairs.size(), 0);
    long long cycle = 0, last_move = 0;
    long in_beat = 0, out_beat = 0;  // beats accepted / received over the whole run
    const long total_in = frames * in_beats, total_out = frames * out_beats;
    bool valid_up = false;  // s_axis_tvalid raised and not yet taken (must hold, AXI-Stream)
    long long input_idles = 0, output_refused = 0;  // the stalls that took effect
    std::string status = "ok";

    while (out_beat < total_out) {
        // 1. drive the inputs for this cycle
        // paced input: beat b of the run not before cycle b * period / in-beats
        const bool may_start =
            in_beat < total_in && (period == 0 || cycle * in_beats >= static_cast<long long>(in_beat) * period);
        bool offer = false;
        if (valid_up) {
            offer = true;
        } else if (may_start) {
            offer = !(p_idle > 0 && rng.next() < p_idle);
            if (!offer) ++input_idles;
        }
        if (offer) set_port(top->s_axis_tdata, &in[static_cast<std::size_t>(in_beat) * in_words], in_words);
        top->s_axis_tvalid = offer;
        top->s_axis_tlast = offer && (in_beat % in_beats == in_beats - 1);
        top->m_axis_tready = !(p_stall > 0 && rng.next() < p_stall);
        top->eval();

        // 2. sample the handshakes of the coming edge
        const bool in_fire = top->s_axis_tvalid && top->s_axis_tready;
        const bool out_fire = top->m_axis_tvalid && top->m_axis_tready;
        if (top->m_axis_tvalid && !top->m_axis_tready) ++output_refused;
        bool moved = in_fire || out_fire;
        for (int s = 0; s < nstreams; ++s) {
            if (bit_of(top->probe_valid, s) && bit_of(top->probe_ready, s)) {
                ++count[static_cast<std::size_t>(s)];
                moved = true;
            }
        }
        for (std::size_t p = 0; p < pairs.size(); ++p) {
            const int64_t fill = static_cast<int64_t>(count[static_cast<std::size_t>(pairs[p].first)]) -
                                 static_cast<int64_t>(count[static_cast<std::size_t>(pairs[p].second)]);
            if (fill > fill_max[p]) fill_max[p] = fill;
        }
        if (in_fire) {
            const long f = in_beat / in_beats;
            if (in_beat % in_beats == 0) timing[static_cast<std::size_t>(f) * 4 + 0] = cycle;
            if (in_beat % in_beats == in_beats - 1) timing[static_cast<std::size_t>(f) * 4 + 1] = cycle;
            ++in_beat;
            valid_up = false;
        } else {
            valid_up = offer;
        }
        if (out_fire) {
            const long f = out_beat / out_beats;
            get_port(top->m_axis_tdata, &out[static_cast<std::size_t>(out_beat) * out_words], out_words);
            if (out_beat % out_beats == 0) timing[static_cast<std::size_t>(f) * 4 + 2] = cycle;
            if (out_beat % out_beats == out_beats - 1) {
                timing[static_cast<std::size_t>(f) * 4 + 3] = cycle;
                if (progress > 0 && (f + 1) % progress == 0) {
                    std::printf("accel harness: %ld/%ld frames, cycle %lld\n", f + 1, frames, cycle);
                    std::fflush(stdout);
                }
            }
            ++out_beat;
        }

        // 3. the rising edge
        tick();
        ++cycle;
        if (moved) last_move = cycle;
        const long started = (in_beat + in_beats - 1) / in_beats;  // frames with an accepted beat
        const bool in_flight = out_beat < started * out_beats;
        if ((in_flight || offer) && cycle - last_move > max_idle) {
            status = "deadlock";
            break;
        }
        if (cycle >= max_cycles) {
            status = "timeout";
            break;
        }
    }

    // at a stop the bits are those of the last cycle (inputs unchanged since)
    top->eval();
    std::ofstream(need("out"), std::ios::binary)
        .write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size() * 4));
    std::ofstream(need("timing"), std::ios::binary)
        .write(reinterpret_cast<const char*>(timing.data()), static_cast<std::streamsize>(timing.size() * 8));
    std::ofstream rep(need("report"));
    rep << "status = " << status << "\n";
    rep << "cycles = " << cycle << "\n";
    rep << "in_beats = " << in_beat << "\n";
    rep << "out_beats = " << out_beat << "\n";
    rep << "last_move = " << last_move << "\n";
    rep << "input_idles = " << input_idles << "\n";
    rep << "output_refused = " << output_refused << "\n";
    rep << "fifo_fill_max =";
    for (auto f : fill_max) rep << " " << f;
    rep << "\nstream_beats =";
    for (auto c : count) rep << " " << c;
    rep << "\nprobe_valid =";
    for (int s = 0; s < nstreams; ++s) rep << " " << bit_of(top->probe_valid, s);
    rep << "\nprobe_ready =";
    for (int s = 0; s < nstreams; ++s) rep << " " << bit_of(top->probe_ready, s);
    rep << "\n";
    top->final();
    return 0;
}
