# R's standard errors of the package's --vcov choices, on the rows the package's cell
# regressions use (written by benchmarks/r_vcov_reference.py, which runs this once; R is
# never a test dependency). Each choice is the R call that docs/method.md names for it.
#
#   Rscript r_vcov_reference.R ROWS.csv CHOICES.csv OUT.csv
#
# ROWS.csv: cell, t_window, spat_window, y, pre, treatment, w and one cluster column per
# cluster choice; CHOICES.csv: vcov, kind, column. OUT.csv: per cell, choice and term the
# estimate, standard error, df of the t test and two-sided p-value (NA where R gives NaN).
suppressMessages({
  library(sandwich)
  library(clubSandwich)
})

args <- commandArgs(trailingOnly = TRUE)
rows <- read.csv(args[1], stringsAsFactors = FALSE)
choices <- read.csv(args[2], stringsAsFactors = FALSE)

one_choice <- function(fit, d, kind, column) {
  b <- coef(fit)
  n_df <- rep(fit$df.residual, length(b))
  if (kind == "classical") {
    se <- summary(fit)$coefficients[, "Std. Error"]
    df <- n_df
  } else if (kind %in% c("HC1", "HC3")) {
    se <- sqrt(diag(sandwich::vcovHC(fit, type = kind)))
    df <- n_df
  } else if (kind == "CR1") {
    cl <- d[[column]]
    se <- sqrt(diag(sandwich::vcovCL(fit, cluster = cl, type = "HC1")))
    df <- rep(length(unique(cl)) - 1, length(b))
    # the same, as clubSandwich writes it: Stata's CR1S and t on G - 1 df
    same <- clubSandwich::coef_test(fit, vcov = "CR1S", cluster = cl, test = "naive-t")
    stopifnot(isTRUE(all.equal(unname(se), same$SE, tolerance = 1e-10)))
  } else if (kind %in% c("CR2", "CR2-ivw")) {
    vc <- clubSandwich::vcovCR(fit, cluster = d[[column]], type = "CR2",
                               inverse_var = kind == "CR2-ivw")
    test <- clubSandwich::coef_test(fit, vcov = vc, test = "Satterthwaite")
    se <- test$SE
    df <- test$df_Satt
  } else {
    stop("unknown kind ", kind)
  }
  p <- 2 * pt(abs(b / se), df = df, lower.tail = FALSE)
  data.frame(term = names(b), estimate = unname(b), se = unname(se), df = unname(df),
             p = unname(p))
}

out <- list()
for (key in unique(rows$cell)) {
  d <- rows[rows$cell == key, ]
  fit <- lm(y ~ pre + treatment, data = d, weights = w)
  if (any(is.na(coef(fit)))) next  # aliased: NA in R's mwa and in the package
  for (i in seq_len(nrow(choices))) {
    res <- tryCatch(one_choice(fit, d, choices$kind[i], choices$column[i]),
                    error = function(e) {
                      message(key, " ", choices$vcov[i], ": ", conditionMessage(e))
                      NULL
                    })
    if (is.null(res)) next
    out[[length(out) + 1]] <- cbind(data.frame(t_window = d$t_window[1],
                                               spat_window = d$spat_window[1],
                                               vcov = choices$vcov[i]), res)
  }
}
out <- do.call(rbind, out)
for (name in c("estimate", "se", "df", "p")) {
  out[[name]] <- ifelse(is.finite(out[[name]]), sprintf("%.17g", out[[name]]), "NA")
}
write.csv(out, args[3], row.names = FALSE, quote = match(c("vcov", "term"), names(out)))
cat(sprintf("R %s, sandwich %s, clubSandwich %s: %d rows\n", getRversion(),
            packageVersion("sandwich"), packageVersion("clubSandwich"), nrow(out)))
