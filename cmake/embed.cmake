# printerfacts_embed(OUTPUT file.cpp FACTS facts.txt STATIC files...)
# Generates a C++ source that defines the functions declared in src/app/embedded_assets.hpp,
# holding the facts file and every static asset as byte arrays. Regenerated when an input changes.
function(printerfacts_embed)
  cmake_parse_arguments(ARG "" "OUTPUT;FACTS" "STATIC" ${ARGN})
  add_custom_command(
    OUTPUT ${ARG_OUTPUT}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${ARG_OUTPUT} -DFACTS=${ARG_FACTS} "-DSTATIC=${ARG_STATIC}"
            -P ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/embed_script.cmake
    DEPENDS ${ARG_FACTS} ${ARG_STATIC} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/embed_script.cmake
    COMMENT "Embedding facts and static assets"
    VERBATIM)
endfunction()
