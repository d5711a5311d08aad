#include "AllValues.h"

#include "Subprocess.h"

#include <nlohmann/json.hpp>

#include <stdexcept>

namespace rdtmon::test {

AllValues allValuesByBusctl(const PrivateBus& bus, std::optional<uid_t> uid) {
    CommandOptions opts;
    opts.uid = uid;
    const CommandResult r =
        runCommand(bus.busctl({"--json=short", "call", "org.rdtmon1", "/org/rdtmon1",
                               "org.rdtmon1.Manager", "GetAllValues"}),
                   opts);
    if (r.exitCode != 0) {
        throw std::runtime_error("busctl call GetAllValues: " + r.err);
    }
    const nlohmann::json j = nlohmann::json::parse(r.out);
    AllValues out;
    out.signature = j.at("type").get<std::string>();
    out.monotonicUsec = j.at("data").at(0).get<uint64_t>();
    for (const auto& g : j.at("data").at(1)) {
        const std::string id = g.at(0).get<std::string>();
        out.order.push_back(id);
        for (const auto& v : g.at(2)) {
            ServedValue s;
            const std::string type = v.at(2).at("type").get<std::string>();
            if (type == "t") {
                s.count = v.at(2).at("data").get<uint64_t>();
            } else if (type == "d") {
                s.decimal = v.at(2).at("data").get<double>();
            } else {
                throw std::runtime_error("GetAllValues: a value of type " + type);
            }
            s.type = type.at(0);
            s.generation = v.at(3).get<uint64_t>();
            s.windowUsec = v.at(4).get<uint64_t>();
            s.measuredUsec = v.at(5).get<uint64_t>();
            out.values[{id, v.at(0).get<std::string>(), v.at(1).get<std::string>()}] = s;
        }
    }
    return out;
}

} // namespace rdtmon::test
