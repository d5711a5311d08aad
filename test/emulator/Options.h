#pragma once
// resctrl-emu: what the command line asks for (parsed in main.cpp).

#include <string>

namespace rdtmon::emu {

struct Options {
    std::string mountpoint;
    unsigned numRmids = 32;
    unsigned l3Domains = 2;
    unsigned closids = 4;
    bool foreground = false;
    unsigned limboMs = 0;
    unsigned snc = 0;
    std::string controlPath;
};

} // namespace rdtmon::emu
