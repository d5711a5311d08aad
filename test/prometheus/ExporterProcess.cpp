#include "ExporterProcess.h"

#include "Subprocess.h"
#include "TestUtil.h"

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace rdtmon::test {

namespace {

// The ADDR of each "serving http://ADDR/metrics" (or https://) in the exporter's log, and
// whether it was https. (No std::regex: in the sanitizer build GCC 12 warns inside its
// automaton, a false positive, and warnings fail CI.)
std::vector<std::string> servedAddresses(const std::string& text, bool* https) {
    static const std::string kPrefix = "serving http";
    static const std::string kSuffix = "/metrics";
    std::vector<std::string> out;
    for (std::size_t at = text.find(kPrefix); at != std::string::npos;
         at = text.find(kPrefix, at + 1)) {
        std::size_t start = at + kPrefix.size();
        const bool secure = text.compare(start, 1, "s") == 0;
        start += secure ? 1 : 0;
        if (text.compare(start, 3, "://") != 0) {
            continue;
        }
        start += 3;
        *https = secure;
        const std::size_t end = text.find_first_of(" \n", start);
        const std::string word =
            text.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (word.size() > kSuffix.size() && word.ends_with(kSuffix)) {
            out.push_back(word.substr(0, word.size() - kSuffix.size()));
        }
    }
    return out;
}

} // namespace

ExporterProcess::ExporterProcess(Options opts) : opts_(std::move(opts)), dir_("rdtmon-exporter") {
    std::vector<std::string> argv;
    if (opts_.asNobody) {
        argv = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"};
    }
    argv.push_back(RDTMON_EXPORTER_BIN);
    for (const std::string& l : opts_.listen) {
        argv.insert(argv.end(), {"--listen", l});
    }
    argv.insert(argv.end(), opts_.extraArgs.begin(), opts_.extraArgs.end());
    pid_ = spawnLogged(argv, mergedEnv({"DBUS_SYSTEM_BUS_ADDRESS=" + opts_.busAddress}),
                       dir_.file("exporter.log"), true);
    // One start-up line per address: "rdtmon-exporter X.Y.Z: serving http://ADDR/metrics"
    // (https:// with TLS).
    const auto deadline =
        std::chrono::steady_clock::now() + scaledDeadline(std::chrono::seconds(20));
    while (std::chrono::steady_clock::now() < deadline) {
        const std::string text = log();
        addresses_ = servedAddresses(text, &https_);
        if (addresses_.size() == opts_.listen.size()) {
            return;
        }
        if (waitForExit(pid_, std::chrono::milliseconds(0))) {
            pid_ = -1;
            throw std::runtime_error("rdtmon-exporter exited at start:\n" + text);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    stop();
    throw std::runtime_error("rdtmon-exporter did not report its addresses:\n" + log());
}

ExporterProcess::~ExporterProcess() {
    stop();
}

std::optional<int> ExporterProcess::stop(int sig) {
    if (pid_ <= 0) {
        return std::nullopt;
    }
    ::kill(pid_, sig);
    std::optional<int> st = waitForExit(pid_, scaledDeadline(std::chrono::milliseconds(10000)));
    if (!st) {
        terminate(pid_, std::chrono::milliseconds(0)); // SIGKILL and reap
    }
    pid_ = -1;
    return st;
}

std::string ExporterProcess::log() const {
    return readFile(dir_.file("exporter.log"));
}

} // namespace rdtmon::test
