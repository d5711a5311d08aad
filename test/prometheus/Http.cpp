#include "Http.h"

#include "Subprocess.h"
#include "TempDir.h"
#include "TestUtil.h"

#include <vector>

namespace rdtmon::test {

HttpReply httpRequest(const std::string& method, const std::string& url,
                      const std::map<std::string, std::string>& form,
                      std::chrono::milliseconds timeout, const HttpOptions& options) {
    TempDir dir("rdtmon-http");
    const std::string seconds = std::to_string(static_cast<double>(timeout.count()) / 1000.0);
    std::vector<std::string> argv = {"curl",
                                     "--silent",
                                     "--show-error",
                                     "--noproxy",
                                     "*",
                                     "--max-time",
                                     seconds,
                                     "--dump-header",
                                     dir.file("headers"),
                                     "--output",
                                     dir.file("body"),
                                     "--write-out",
                                     "%{http_code}\n%{content_type}"};
    if (method == "HEAD") {
        argv.push_back("--head");
    } else if (method != "GET" || !form.empty()) {
        argv.insert(argv.end(), {"--request", method});
    }
    if (!options.caFile.empty()) {
        argv.insert(argv.end(), {"--cacert", options.caFile});
    }
    if (!options.certFile.empty()) {
        argv.insert(argv.end(), {"--cert", options.certFile, "--key", options.keyFile});
    }
    if (!options.user.empty()) {
        argv.insert(argv.end(), {"--user", options.user + ":" + options.password});
    }
    argv.insert(argv.end(), options.curlArgs.begin(), options.curlArgs.end());
    for (const auto& [name, value] : form) {
        argv.insert(argv.end(), {"--data-urlencode", name + "=" + value});
    }
    argv.push_back(url);
    CommandResult r = runCommand(argv, {.timeout = timeout + std::chrono::seconds(5)});
    HttpReply reply;
    const std::size_t nl = r.out.find('\n');
    if (nl != std::string::npos) {
        reply.status = std::atoi(r.out.substr(0, nl).c_str());
        reply.contentType = r.out.substr(nl + 1);
    }
    // curl --head writes the headers where the body would go; a HEAD reply has no body.
    reply.body = method == "HEAD" ? std::string() : readFile(dir.file("body"));
    reply.headers = readFile(dir.file("headers"));
    reply.error = r.err;
    return reply;
}

} // namespace rdtmon::test
