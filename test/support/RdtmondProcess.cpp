#include "RdtmondProcess.h"

#include "Subprocess.h"
#include "TestUtil.h"

#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>

namespace rdtmon::test {

namespace {
using Clock = std::chrono::steady_clock;
} // namespace

Rdtmond::Rdtmond(const PrivateBus& bus, Options opts)
    : bus_(bus), opts_(std::move(opts)), dir_("rdtmond") {
    if (opts_.stateDir.empty()) {
        opts_.stateDir = dir_.file("state");
    }
    start();
}

Rdtmond::~Rdtmond() {
    if (pid_ > 0) {
        terminate(pid_, std::chrono::milliseconds(10000));
        pid_ = -1;
    }
}

void Rdtmond::start() {
    if (pid_ > 0) {
        throw std::logic_error("rdtmond already running");
    }
    {
        std::ofstream cfg(configPath());
        cfg << opts_.configJson;
    }
    std::vector<std::string> args = opts_.prefix;
    args.insert(args.end(), {RDTMOND_BIN, "--config", configPath(), "--resctrl", opts_.resctrl,
                             "--state-dir", opts_.stateDir, "--no-mount"});
    args.insert(args.end(), opts_.extraArgs.begin(), opts_.extraArgs.end());
    pid_ =
        spawnLogged(std::move(args), mergedEnv({bus_.envEntry()}), dir_.file("rdtmond.log"), true);
    if (!opts_.waitReady) {
        return;
    }
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
        if (!running()) {
            throw std::runtime_error("rdtmond exited at start-up (status " +
                                     std::to_string(lastStatus_) + "):\n" + log());
        }
        // The owner must be this process: right after a kill -9 the old one may linger.
        if (bus_.nameOwnerPid("org.rdtmon1") == pid_) {
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw std::runtime_error("rdtmond did not take its bus name in 20 s:\n" + log());
}

void Rdtmond::stop() {
    if (pid_ <= 0) {
        return;
    }
    std::optional<int> st = terminate(pid_, std::chrono::milliseconds(10000));
    if (!st) {
        pid_ = -1;
        throw std::runtime_error("rdtmond did not stop on SIGTERM within 10 s");
    }
    lastStatus_ = waitStatusToCode(*st);
    pid_ = -1;
}

void Rdtmond::kill9() {
    if (pid_ <= 0) {
        return;
    }
    ::kill(pid_, SIGKILL);
    if (std::optional<int> st = waitForExit(pid_, std::chrono::milliseconds(5000))) {
        lastStatus_ = waitStatusToCode(*st);
    }
    pid_ = -1;
}

bool Rdtmond::running() {
    if (pid_ <= 0) {
        return false;
    }
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        lastStatus_ = waitStatusToCode(status);
        pid_ = -1;
        return false;
    }
    return true;
}

std::string Rdtmond::log() const {
    return readFile(dir_.file("rdtmond.log"));
}

std::map<std::string, nlohmann::json> recordedGroups(const std::string& stateDir) {
    std::map<std::string, nlohmann::json> out;
    const std::string snapshot = readFile(stateDir + "/groups.json");
    if (!snapshot.empty()) {
        const nlohmann::json doc = nlohmann::json::parse(snapshot);
        for (const auto& g : doc.at("groups")) {
            out[g.at("id").get<std::string>()] = g;
        }
    }
    std::istringstream journal(readFile(stateDir + "/groups.journal"));
    for (std::string line; std::getline(journal, line);) {
        if (journal.eof()) {
            break; // no '\n': a torn write, ignored
        }
        const nlohmann::json entry = nlohmann::json::parse(line);
        if (entry.contains("put")) {
            out[entry["put"].at("id").get<std::string>()] = entry["put"];
        } else {
            out.erase(entry.at("erase").get<std::string>());
        }
    }
    return out;
}

std::set<std::string> recordedIds(const std::string& stateDir,
                                  const std::function<bool(const nlohmann::json&)>& keep) {
    std::set<std::string> ids;
    for (const auto& [id, g] : recordedGroups(stateDir)) {
        if (keep(g)) {
            ids.insert(id);
        }
    }
    return ids;
}

std::string stateFilesText(const std::string& stateDir) {
    return "groups.json:\n" + readFile(stateDir + "/groups.json") + "groups.journal:\n" +
           readFile(stateDir + "/groups.journal");
}

} // namespace rdtmon::test
