# cmake -DSCDOC=scdoc -DIN=<tool>.1.scd -DINCLUDE_DIR=<dir> -DOUT=<tool>.1 -P scdoc.cmake
# Expands "; include: NAME.scd" lines (an scdoc comment, so the source stays valid scdoc) with
# the file from INCLUDE_DIR, then runs scdoc. docs/man/scd2md expands them the same way.

file(READ ${IN} text)
file(GLOB includes ${INCLUDE_DIR}/*.scd)
foreach(path ${includes})
    get_filename_component(name ${path} NAME)
    file(READ ${path} body)
    string(REGEX REPLACE "\n$" "" body "${body}")
    string(REPLACE "; include: ${name}" "${body}" text "${text}")
endforeach()
string(REGEX MATCH "; include: [^\n]*" missing "${text}")
if(missing)
    message(FATAL_ERROR "${IN}: '${missing}' names no file in ${INCLUDE_DIR}")
endif()
file(WRITE ${OUT}.scd "${text}")
execute_process(COMMAND ${SCDOC} INPUT_FILE ${OUT}.scd OUTPUT_FILE ${OUT}
                ERROR_VARIABLE errors RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    file(REMOVE ${OUT})
    message(FATAL_ERROR "scdoc failed on ${IN} (included files expanded in ${OUT}.scd): ${errors}")
endif()
