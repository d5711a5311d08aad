#include "WebConfig.h"

#include "BasicAuth.h"
#include "UniqueFd.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <set>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace rdtmon::exporter {

namespace {

constexpr off_t kMaxFileSize = 1 << 20;

[[noreturn]] void fail(const std::string& message) {
    throw WebConfigError(message);
}

// The keys exporter-toolkit knows but rdtmon-exporter does not serve: refused by name
// rather than ignored, since each changes what a client may do.
const std::set<std::string> kUnsupportedTop = {"http_server_config", "rate_limit"};
const std::set<std::string> kUnsupportedTls = {"cert",
                                               "key",
                                               "client_ca",
                                               "cipher_suites",
                                               "curve_preferences",
                                               "prefer_server_cipher_suites",
                                               "client_allowed_sans"};

std::string keyName(const YAML::Node& key, const std::string& where) {
    if (!key.IsScalar()) {
        fail(where + ": a key is not a plain name");
    }
    return key.Scalar();
}

// The entries of a mapping in file order, each key once; a null node (the key written with
// nothing after it) is an empty mapping.
std::vector<std::pair<std::string, YAML::Node>> entries(const YAML::Node& node,
                                                        const std::string& where) {
    std::vector<std::pair<std::string, YAML::Node>> out;
    if (!node.IsDefined() || node.IsNull()) {
        return out;
    }
    if (!node.IsMap()) {
        fail(where + " is not a mapping of keys to values");
    }
    std::set<std::string> seen;
    for (const auto& kv : node) {
        std::string name = keyName(kv.first, where);
        if (!seen.insert(name).second) {
            fail((where == "the file" ? name : where + "." + name) + " appears twice");
        }
        out.emplace_back(std::move(name), kv.second);
    }
    return out;
}

// A scalar value; null and "" are both unset (empty).
std::string scalar(const YAML::Node& node, const std::string& key) {
    if (node.IsNull()) {
        return {};
    }
    if (!node.IsScalar()) {
        fail(key + " must be a single value, not a list or mapping");
    }
    return node.Scalar();
}

TlsVersion parseVersion(const std::string& text, const std::string& key) {
    if (text == "TLS10") {
        return TlsVersion::Tls10;
    }
    if (text == "TLS11") {
        return TlsVersion::Tls11;
    }
    if (text == "TLS12") {
        return TlsVersion::Tls12;
    }
    if (text == "TLS13") {
        return TlsVersion::Tls13;
    }
    fail(key + ": unknown TLS version \"" + text + "\" (TLS10, TLS11, TLS12 or TLS13)");
}

ClientAuth parseClientAuth(const std::string& text) {
    if (text.empty() || text == "NoClientCert") {
        return ClientAuth::None;
    }
    if (text == "VerifyClientCertIfGiven") {
        return ClientAuth::VerifyIfGiven;
    }
    if (text == "RequireAndVerifyClientCert") {
        return ClientAuth::RequireAndVerify;
    }
    if (text == "RequestClientCert" || text == "RequireAnyClientCert") {
        fail("tls_server_config.client_auth_type: " + text +
             " is not supported by rdtmon-exporter (a client certificate that is not verified "
             "proves nothing): use VerifyClientCertIfGiven or RequireAndVerifyClientCert");
    }
    fail("tls_server_config.client_auth_type: unknown value \"" + text +
         "\" (NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)");
}

std::string resolve(const std::string& path, const std::string& baseDir) {
    if (path.empty() || path.front() == '/' || baseDir.empty()) {
        return path;
    }
    return (std::filesystem::path(baseDir) / path).lexically_normal().string();
}

std::optional<WebConfig::Tls> parseTls(const YAML::Node& node, const std::string& baseDir) {
    WebConfig::Tls tls;
    std::string clientAuth;
    bool any = false;
    bool maxGiven = false;
    for (const auto& [name, value] : entries(node, "tls_server_config")) {
        const std::string key = "tls_server_config." + name;
        if (kUnsupportedTls.count(name) != 0) {
            fail(key + " is not supported by rdtmon-exporter");
        }
        const std::string text = scalar(value, key);
        any = any || !text.empty();
        if (name == "cert_file") {
            tls.certFile = resolve(text, baseDir);
        } else if (name == "key_file") {
            tls.keyFile = resolve(text, baseDir);
        } else if (name == "client_ca_file") {
            tls.clientCaFile = resolve(text, baseDir);
        } else if (name == "client_auth_type") {
            clientAuth = text;
        } else if (name == "min_version") {
            if (!text.empty()) {
                tls.minVersion = parseVersion(text, key);
            }
        } else if (name == "max_version") {
            if (!text.empty()) {
                tls.maxVersion = parseVersion(text, key);
                maxGiven = true;
            }
        } else {
            fail("unknown key " + key);
        }
    }
    // exporter-toolkit too serves plain HTTP when tls_server_config sets nothing.
    if (!any) {
        return std::nullopt;
    }
    tls.clientAuth = parseClientAuth(clientAuth);
    if (tls.certFile.empty()) {
        fail("tls_server_config: cert_file is missing");
    }
    if (tls.keyFile.empty()) {
        fail("tls_server_config: key_file is missing");
    }
    if (tls.clientAuth != ClientAuth::None && tls.clientCaFile.empty()) {
        fail(std::string("tls_server_config: client_auth_type ") + clientAuthName(tls.clientAuth) +
             " needs client_ca_file, the CA that client certificates are verified against");
    }
    if (tls.clientAuth == ClientAuth::None && !tls.clientCaFile.empty()) {
        fail("tls_server_config: client_ca_file is set but client_auth_type is NoClientCert: "
             "set client_auth_type to RequireAndVerifyClientCert or VerifyClientCertIfGiven");
    }
    if (maxGiven && tls.maxVersion < tls.minVersion) {
        fail("tls_server_config: max_version is below min_version");
    }
    return tls;
}

std::map<std::string, std::string> parseUsers(const YAML::Node& node) {
    std::map<std::string, std::string> users;
    for (const auto& [name, value] : entries(node, "basic_auth_users")) {
        const std::string key = "basic_auth_users." + name;
        const std::string hash = scalar(value, key);
        if (name.empty()) {
            fail("basic_auth_users: a user name is empty");
        }
        if (name.find(':') != std::string::npos) {
            fail(key + ": a user name with a colon cannot be sent in basic auth");
        }
        if (!BasicAuth::isBcryptHash(hash)) {
            fail(key +
                 ": not a bcrypt hash ($2y$, $2b$ or $2a$, cost and 53 characters; make "
                 "one with htpasswd -nBC 10 " +
                 name + ")");
        }
        users.emplace(name, hash);
    }
    return users;
}

} // namespace

const char* clientAuthName(ClientAuth a) {
    switch (a) {
    case ClientAuth::None:
        return "NoClientCert";
    case ClientAuth::VerifyIfGiven:
        return "VerifyClientCertIfGiven";
    case ClientAuth::RequireAndVerify:
        return "RequireAndVerifyClientCert";
    }
    return "?";
}

std::string tlsPriorities(TlsVersion min, TlsVersion max) {
    std::string p = "NORMAL:-VERS-ALL";
    static constexpr std::pair<TlsVersion, const char*> kNames[] = {
        {TlsVersion::Tls13, ":+VERS-TLS1.3"},
        {TlsVersion::Tls12, ":+VERS-TLS1.2"},
        {TlsVersion::Tls11, ":+VERS-TLS1.1"},
        {TlsVersion::Tls10, ":+VERS-TLS1.0"}};
    for (const auto& [v, name] : kNames) {
        if (v >= min && v <= max) {
            p += name;
        }
    }
    return p;
}

WebConfig parseWebConfig(const std::string& text, const std::string& baseDir) {
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        fail(std::string("not valid YAML: ") + e.what());
    }
    WebConfig config;
    if (root.IsDefined() && !root.IsNull() && !root.IsMap()) {
        fail("the file is not a YAML mapping (tls_server_config:, basic_auth_users:)");
    }
    for (const auto& [name, value] : entries(root, "the file")) {
        if (kUnsupportedTop.count(name) != 0) {
            fail(name + " is not supported by rdtmon-exporter");
        }
        if (name == "tls_server_config") {
            config.tls = parseTls(value, baseDir);
        } else if (name == "basic_auth_users") {
            config.basicAuthUsers = parseUsers(value);
        } else {
            fail("unknown key " + name);
        }
    }
    return config;
}

std::string readWebFile(const std::string& path, const std::string& what) {
    auto cannot = [&](const std::string& why) {
        fail("cannot read " + what + " " + path + ": " + why);
    };
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd) {
        cannot(std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        cannot(std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        cannot("not a regular file");
    }
    if (st.st_size > kMaxFileSize) {
        cannot("larger than 1 MiB");
    }
    std::string text;
    char buf[8192];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            cannot(std::strerror(errno));
        }
        if (n == 0) {
            break;
        }
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > static_cast<std::size_t>(kMaxFileSize)) {
            cannot("larger than 1 MiB");
        }
    }
    return text;
}

WebConfig loadWebConfig(const std::string& file) {
    const std::string absolute = std::filesystem::absolute(file).lexically_normal().string();
    const std::string text = readWebFile(absolute, "web config file");
    try {
        return parseWebConfig(text, std::filesystem::path(absolute).parent_path().string());
    } catch (const WebConfigError& e) {
        throw WebConfigError("web config file " + absolute + ": " + e.what());
    }
}

} // namespace rdtmon::exporter
