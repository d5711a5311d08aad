#pragma once
// resctrl-emu: the test-control socket (`--control PATH`). A unix stream socket served by
// a thread of its own: one command per line, one reply line (`ok ...` or `error <text>`);
// the commands are listed in README.md. Each command runs under the model's lock.

#include "Model.h"
#include "UniqueFd.h"

#include <string>
#include <thread>

namespace rdtmon::emu {

class ControlServer {
public:
    // Binds and listens on `path` (replacing a stale socket); throws std::runtime_error.
    ControlServer(Model& m, const std::string& path);
    ~ControlServer();
    void start();
    void stop();

private:
    void run();

    Model& model_;
    std::string path_;
    UniqueFd listen_;
    UniqueFd wake_;
    std::thread thread_;
};

} // namespace rdtmon::emu
