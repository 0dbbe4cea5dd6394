#pragma once
// Files of data/ compiled into the binary (see cmake/EmbedData.cmake).
#include <span>

namespace paraplan::planner::embedded {

struct EmbeddedFile {
  const char* id;    // file name without extension, e.g. "llama3-8b"
  const char* text;  // file contents
};

std::span<const EmbeddedFile> models();
std::span<const EmbeddedFile> hardware();
std::span<const EmbeddedFile> validation();
std::span<const EmbeddedFile> calibration();

}  // namespace paraplan::planner::embedded
