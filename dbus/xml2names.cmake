# Writes a C++ header of the names and signatures in one interface XML, so that a client
# that speaks sd-bus directly (rdtmon-hook) takes them from the XML, the one source of the
# interface, as the generated proxy does.
#
#   cmake -DXML=org.rdtmon1.Manager.xml -DOUT=ManagerNames.h -DNAME=Manager -P xml2names.cmake
#
# For NAME=Manager it writes namespace rdtmon::xml::Manager with kInterface, one
# Method{name, in, out} per method, Property{name, type} per property and Signal{name, args}
# per signal, each named as in the XML (e.g. Manager::CreateGroup.in is "su"). The XML is
# read tag by tag: it is ours and plain (one interface, no CDATA).
cmake_minimum_required(VERSION 3.25)
foreach(v XML OUT NAME)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "xml2names.cmake: -D${v}= is required")
  endif()
endforeach()

file(READ "${XML}" xml)
# Comments may hold anything tag-like; XML forbids "--" inside them.
string(REGEX REPLACE "<!--([^-]|-[^-])*-->" "" xml "${xml}")
string(REGEX MATCHALL "<[^>]+>" tags "${xml}")

function(attr tag key out)
  if(tag MATCHES "[ \t\r\n]${key}=\"([^\"]*)\"")
    set(${out} "${CMAKE_MATCH_1}" PARENT_SCOPE)
  else()
    set(${out} "" PARENT_SCOPE)
  endif()
endfunction()

set(iface "")
set(kind "")
set(body "")
foreach(tag IN LISTS tags)
  if(tag MATCHES "^<interface[ \t\r\n]")
    if(NOT iface STREQUAL "")
      message(FATAL_ERROR "xml2names.cmake: ${XML} has more than one interface")
    endif()
    attr("${tag}" name iface)
  elseif(tag MATCHES "^<(method|signal)[ \t\r\n]")
    set(kind "${CMAKE_MATCH_1}")
    attr("${tag}" name member)
    set(in "")
    set(out "")
    if(tag MATCHES "/>$")
      if(kind STREQUAL "method")
        string(APPEND body "inline constexpr Method ${member}{\"${member}\", \"\", \"\"};\n")
      else()
        string(APPEND body "inline constexpr Signal ${member}{\"${member}\", \"\"};\n")
      endif()
      set(kind "")
    endif()
  elseif(tag MATCHES "^<arg[ \t\r\n]" AND NOT kind STREQUAL "")
    attr("${tag}" type type)
    attr("${tag}" direction dir)
    # Method arguments are "in" unless said otherwise; signal arguments are all "out".
    if(kind STREQUAL "signal" OR dir STREQUAL "out")
      string(APPEND out "${type}")
    else()
      string(APPEND in "${type}")
    endif()
  elseif(tag STREQUAL "</method>")
    string(APPEND body "inline constexpr Method ${member}{\"${member}\", \"${in}\", \"${out}\"};\n")
    set(kind "")
  elseif(tag STREQUAL "</signal>")
    string(APPEND body "inline constexpr Signal ${member}{\"${member}\", \"${out}\"};\n")
    set(kind "")
  elseif(tag MATCHES "^<property[ \t\r\n]")
    attr("${tag}" name member)
    attr("${tag}" type type)
    string(APPEND body "inline constexpr Property ${member}{\"${member}\", \"${type}\"};\n")
  endif()
endforeach()
if(iface STREQUAL "")
  message(FATAL_ERROR "xml2names.cmake: no interface in ${XML}")
endif()

get_filename_component(xmlName "${XML}" NAME)
set(text "// Generated at build time from dbus/${xmlName} by dbus/xml2names.cmake: never edit.
#pragma once

namespace rdtmon::xml::${NAME} {

struct Method {
    const char* name;
    const char* in;  // signature of the arguments
    const char* out; // signature of the reply
};
struct Property {
    const char* name;
    const char* type;
};
struct Signal {
    const char* name;
    const char* args;
};

inline constexpr const char* kInterface = \"${iface}\";
${body}
} // namespace rdtmon::xml::${NAME}
")
file(WRITE "${OUT}" "${text}")
