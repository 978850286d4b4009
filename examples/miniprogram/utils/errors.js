// One line for the UI out of a HuihuaError (or anything else).
function describe(error) {
  if (!error) return ''
  if (error.serverCode) return error.serverCode + (error.statusCode ? ' (' + error.statusCode + ')' : '')
  if (error.code) return error.code + ': ' + error.message
  return String(error.message || error)
}

module.exports = { describe }
