#pragma once

// The asynchronous answers of Manager.GetCounters, Manager.GetAllCounters,
// Manager.GetAllValues and Group.GetCounters: the id is checked on the loop at once, the
// counters come from the CountersReader's shared pass when it is done, and every failure is
// a named D-Bus error.

#include "CountersReader.h"
#include "GroupManager.h"

#include <cstdint>
#include <map>
#include <sdbus-c++/sdbus-c++.h>
#include <string>
#include <vector>

namespace rdtmon {

using CountersMap = std::map<std::string, std::map<std::string, uint64_t>>;
using CountersEntry = sdbus::Struct<std::string, std::map<std::string, std::string>, CountersMap>;

void replyCounters(CountersReader& reader, GroupManager& mgr, const char* method,
                   const std::string& id, sdbus::Result<CountersMap>&& result);
using ValueEntry =
    sdbus::Struct<std::string, std::string, sdbus::Variant, uint64_t, uint64_t, uint64_t>;
using ValuesEntry =
    sdbus::Struct<std::string, std::map<std::string, std::string>, std::vector<ValueEntry>>;

// GetAllValues: GetAllCounters' pass, each value with its generation.
void replyAllValues(CountersReader& reader,
                    sdbus::Result<uint64_t, std::vector<ValuesEntry>>&& result);
void replyAllCounters(CountersReader& reader,
                      sdbus::Result<uint64_t, std::vector<CountersEntry>>&& result);

} // namespace rdtmon
