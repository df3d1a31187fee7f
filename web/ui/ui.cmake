# Included from web/CMakeLists.txt: compiles the static web UI (web/ui/*) into the binary as C
# arrays, regenerated whenever one of the files (or the generator) changes.
set(VIDX_UI_FILES index.html app.js app.css icon.svg)
set(VIDX_UI_SOURCE ${CMAKE_CURRENT_BINARY_DIR}/web_ui_data.c)
list(JOIN VIDX_UI_FILES "," _vidx_ui_list)
list(TRANSFORM VIDX_UI_FILES PREPEND ${CMAKE_CURRENT_SOURCE_DIR}/ui/ OUTPUT_VARIABLE _vidx_ui_paths)
add_custom_command(
  OUTPUT ${VIDX_UI_SOURCE}
  COMMAND ${CMAKE_COMMAND} -DUI_DIR=${CMAKE_CURRENT_SOURCE_DIR}/ui -DOUT=${VIDX_UI_SOURCE}
          -DFILES=${_vidx_ui_list} -P ${CMAKE_CURRENT_SOURCE_DIR}/ui/embed.cmake
  DEPENDS ${_vidx_ui_paths} ${CMAKE_CURRENT_SOURCE_DIR}/ui/embed.cmake
  COMMENT "Embedding the web UI (web/ui/)"
  VERBATIM)
