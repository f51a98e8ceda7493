//! Static tables for the simulated ticker world: well-known real tickers (names,
//! exchanges, approximate listing dates and price levels, real splits) and the word
//! lists that generated names are made from. Prices are rough levels, not history.

/// A real exchange-listed security. `cik` is empty when a generated one is fine;
/// `delisted` is empty for active names. Dates are `YYYY-MM-DD`.
pub struct RealListing {
    pub ticker: &'static str,
    pub name: &'static str,
    pub type_code: &'static str,
    pub exchange: &'static str,
    pub listed: &'static str,
    pub price: f64,
    pub cik: &'static str,
    pub delisted: &'static str,
}

const fn listing(
    ticker: &'static str,
    name: &'static str,
    type_code: &'static str,
    exchange: &'static str,
    listed: &'static str,
    price: f64,
) -> RealListing {
    RealListing {
        ticker,
        name,
        type_code,
        exchange,
        listed,
        price,
        cik: "",
        delisted: "",
    }
}

const fn with_cik(l: RealListing, cik: &'static str) -> RealListing {
    RealListing { cik, ..l }
}

const fn delisted(l: RealListing, date: &'static str) -> RealListing {
    RealListing {
        delisted: date,
        ..l
    }
}

/// Common stocks, largest first. `KIMPL` is fictional: it exists to sit beside the real
/// preferred `KIMpL` so that two tickers differ only by case.
#[rustfmt::skip]
pub const COMMON_STOCKS: &[RealListing] = &[
    with_cik(listing("AAPL", "Apple Inc.", "CS", "XNAS", "1980-12-12", 230.0), "0000320193"),
    with_cik(listing("MSFT", "Microsoft Corp", "CS", "XNAS", "1986-03-13", 420.0), "0000789019"),
    with_cik(listing("NVDA", "Nvidia Corp", "CS", "XNAS", "1999-01-22", 130.0), "0001045810"),
    with_cik(listing("AMZN", "Amazon.Com Inc", "CS", "XNAS", "1997-05-15", 190.0), "0001018724"),
    with_cik(listing("GOOGL", "Alphabet Inc. Class A Common Stock", "CS", "XNAS", "2004-08-19", 170.0), "0001652044"),
    with_cik(listing("GOOG", "Alphabet Inc. Class C Capital Stock", "CS", "XNAS", "2014-04-03", 172.0), "0001652044"),
    with_cik(listing("META", "Meta Platforms, Inc. Class A Common Stock", "CS", "XNAS", "2012-05-18", 550.0), "0001326801"),
    with_cik(listing("TSLA", "Tesla, Inc. Common Stock", "CS", "XNAS", "2010-06-29", 250.0), "0001318605"),
    with_cik(listing("BRK.A", "Berkshire Hathaway Inc.", "CS", "XNYS", "1980-03-17", 650_000.0), "0001067983"),
    with_cik(listing("BRK.B", "Berkshire Hathaway Inc. Class B", "CS", "XNYS", "1996-05-09", 430.0), "0001067983"),
    with_cik(listing("JPM", "JPMorgan Chase & Co.", "CS", "XNYS", "1980-03-17", 210.0), "0000019617"),
    listing("V", "Visa Inc.", "CS", "XNYS", "2008-03-19", 280.0),
    listing("MA", "Mastercard Incorporated", "CS", "XNYS", "2006-05-25", 470.0),
    listing("UNH", "UnitedHealth Group Incorporated", "CS", "XNYS", "1984-10-17", 520.0),
    listing("JNJ", "Johnson & Johnson", "CS", "XNYS", "1970-01-02", 155.0),
    listing("XOM", "Exxon Mobil Corporation", "CS", "XNYS", "1970-01-02", 115.0),
    listing("CVX", "Chevron Corporation", "CS", "XNYS", "1970-01-02", 155.0),
    listing("PG", "Procter & Gamble Company", "CS", "XNYS", "1970-01-02", 165.0),
    listing("HD", "Home Depot, Inc.", "CS", "XNYS", "1981-09-22", 380.0),
    listing("KO", "Coca-Cola Company", "CS", "XNYS", "1970-01-02", 65.0),
    listing("PEP", "PepsiCo, Inc.", "CS", "XNAS", "1970-01-02", 160.0),
    listing("WMT", "Walmart Inc.", "CS", "XNAS", "1972-08-25", 80.0),
    listing("COST", "Costco Wholesale Corp", "CS", "XNAS", "1985-12-05", 900.0),
    listing("AVGO", "Broadcom Inc.", "CS", "XNAS", "2009-08-06", 170.0),
    listing("ORCL", "Oracle Corporation", "CS", "XNYS", "1986-03-12", 170.0),
    listing("CSCO", "Cisco Systems, Inc.", "CS", "XNAS", "1990-02-16", 58.0),
    listing("INTC", "Intel Corp", "CS", "XNAS", "1971-10-13", 22.0),
    listing("AMD", "Advanced Micro Devices", "CS", "XNAS", "1979-09-27", 140.0),
    listing("NFLX", "Netflix Inc", "CS", "XNAS", "2002-05-23", 700.0),
    listing("ADBE", "Adobe Inc.", "CS", "XNAS", "1986-08-20", 500.0),
    listing("CRM", "Salesforce, Inc.", "CS", "XNYS", "2004-06-23", 280.0),
    listing("DIS", "Walt Disney Company", "CS", "XNYS", "1970-01-02", 100.0),
    listing("BAC", "Bank of America Corporation", "CS", "XNYS", "1970-01-02", 42.0),
    listing("WFC", "Wells Fargo & Company", "CS", "XNYS", "1970-01-02", 60.0),
    listing("C", "Citigroup Inc.", "CS", "XNYS", "1986-10-29", 65.0),
    listing("GS", "Goldman Sachs Group, Inc.", "CS", "XNYS", "1999-05-04", 500.0),
    listing("MS", "Morgan Stanley", "CS", "XNYS", "1993-02-24", 110.0),
    listing("PFE", "Pfizer Inc.", "CS", "XNYS", "1970-01-02", 28.0),
    listing("MRK", "Merck & Co., Inc.", "CS", "XNYS", "1970-01-02", 100.0),
    listing("ABBV", "AbbVie Inc.", "CS", "XNYS", "2013-01-02", 180.0),
    listing("LLY", "Eli Lilly and Company", "CS", "XNYS", "1970-01-02", 800.0),
    listing("T", "AT&T Inc.", "CS", "XNYS", "1984-07-19", 21.0),
    listing("VZ", "Verizon Communications Inc.", "CS", "XNYS", "1983-11-21", 42.0),
    listing("NKE", "Nike, Inc.", "CS", "XNYS", "1980-12-02", 80.0),
    listing("MCD", "McDonald's Corporation", "CS", "XNYS", "1970-01-02", 290.0),
    listing("IBM", "International Business Machines Corporation", "CS", "XNYS", "1970-01-02", 210.0),
    listing("GE", "GE Aerospace", "CS", "XNYS", "1970-01-02", 170.0),
    listing("BA", "Boeing Company", "CS", "XNYS", "1970-01-02", 170.0),
    listing("CAT", "Caterpillar Inc.", "CS", "XNYS", "1970-01-02", 350.0),
    listing("QCOM", "Qualcomm Inc", "CS", "XNAS", "1991-12-13", 160.0),
    listing("TXN", "Texas Instruments Incorporated", "CS", "XNAS", "1970-01-02", 190.0),
    listing("CMG", "Chipotle Mexican Grill, Inc.", "CS", "XNYS", "2006-01-26", 55.0),
    listing("F", "Ford Motor Company", "CS", "XNYS", "1970-01-02", 11.0),
    listing("GM", "General Motors Company", "CS", "XNYS", "2010-11-18", 50.0),
    listing("SBUX", "Starbucks Corp", "CS", "XNAS", "1992-06-26", 95.0),
    listing("PYPL", "PayPal Holdings, Inc.", "CS", "XNAS", "2015-07-06", 70.0),
    listing("UBER", "Uber Technologies, Inc.", "CS", "XNYS", "2019-05-10", 70.0),
    listing("SNOW", "Snowflake Inc.", "CS", "XNYS", "2020-09-16", 160.0),
    listing("PLTR", "Palantir Technologies Inc.", "CS", "XNAS", "2020-09-30", 40.0),
    listing("ABNB", "Airbnb, Inc. Class A Common Stock", "CS", "XNAS", "2020-12-10", 140.0),
    listing("COIN", "Coinbase Global, Inc. Class A Common Stock", "CS", "XNAS", "2021-04-14", 220.0),
    listing("RIVN", "Rivian Automotive, Inc. Class A Common Stock", "CS", "XNAS", "2021-11-10", 14.0),
    listing("KIMPL", "Kimpl Biosciences Inc.", "CS", "XNAS", "2021-06-15", 8.0),
    delisted(listing("TWTR", "Twitter, Inc.", "CS", "XNYS", "2013-11-07", 50.0), "2022-10-28"),
    delisted(listing("ATVI", "Activision Blizzard, Inc", "CS", "XNAS", "1993-10-25", 90.0), "2023-10-13"),
    delisted(listing("FRC", "First Republic Bank", "CS", "XNYS", "2010-12-09", 100.0), "2023-05-02"),
];

/// Exchange-traded funds, largest first.
#[rustfmt::skip]
pub const ETFS: &[RealListing] = &[
    listing("SPY", "SPDR S&P 500 ETF Trust", "ETF", "ARCX", "1993-01-29", 520.0),
    listing("QQQ", "Invesco QQQ Trust, Series 1", "ETF", "XNAS", "1999-03-10", 450.0),
    listing("IWM", "iShares Russell 2000 ETF", "ETF", "ARCX", "2000-05-26", 210.0),
    listing("DIA", "SPDR Dow Jones Industrial Average ETF Trust", "ETF", "ARCX", "1998-01-20", 400.0),
    listing("VTI", "Vanguard Total Stock Market ETF", "ETF", "ARCX", "2001-06-15", 260.0),
    listing("VOO", "Vanguard S&P 500 ETF", "ETF", "ARCX", "2010-09-09", 480.0),
    listing("IVV", "iShares Core S&P 500 ETF", "ETF", "ARCX", "2000-05-19", 520.0),
    listing("EFA", "iShares MSCI EAFE ETF", "ETF", "ARCX", "2001-08-17", 80.0),
    listing("EEM", "iShares MSCI Emerging Markets ETF", "ETF", "ARCX", "2003-04-14", 42.0),
    listing("GLD", "SPDR Gold Shares", "ETF", "ARCX", "2004-11-18", 220.0),
    listing("SLV", "iShares Silver Trust", "ETF", "ARCX", "2006-04-28", 26.0),
    listing("TLT", "iShares 20+ Year Treasury Bond ETF", "ETF", "XNAS", "2002-07-30", 92.0),
    listing("HYG", "iShares iBoxx $ High Yield Corporate Bond ETF", "ETF", "ARCX", "2007-04-11", 78.0),
    listing("LQD", "iShares iBoxx $ Investment Grade Corporate Bond ETF", "ETF", "ARCX", "2002-07-26", 108.0),
    listing("XLF", "Financial Select Sector SPDR Fund", "ETF", "ARCX", "1998-12-22", 42.0),
    listing("XLE", "Energy Select Sector SPDR Fund", "ETF", "ARCX", "1998-12-22", 90.0),
    listing("XLK", "Technology Select Sector SPDR Fund", "ETF", "ARCX", "1998-12-22", 210.0),
    listing("XLV", "Health Care Select Sector SPDR Fund", "ETF", "ARCX", "1998-12-22", 145.0),
    listing("VNQ", "Vanguard Real Estate ETF", "ETF", "ARCX", "2004-09-29", 88.0),
    listing("SMH", "VanEck Semiconductor ETF", "ETF", "XNAS", "2011-12-21", 240.0),
    listing("SOXX", "iShares Semiconductor ETF", "ETF", "XNAS", "2001-07-13", 220.0),
    listing("ARKK", "ARK Innovation ETF", "ETF", "ARCX", "2014-10-31", 50.0),
    listing("USO", "United States Oil Fund, LP", "ETF", "ARCX", "2006-04-10", 75.0),
    listing("UNG", "United States Natural Gas Fund, LP", "ETF", "ARCX", "2007-04-18", 15.0),
    listing("BND", "Vanguard Total Bond Market ETF", "ETF", "XNAS", "2007-04-10", 72.0),
    listing("SCHD", "Schwab US Dividend Equity ETF", "ETF", "ARCX", "2011-10-20", 27.0),
    listing("JEPI", "JPMorgan Equity Premium Income ETF", "ETF", "ARCX", "2020-05-21", 57.0),
    listing("IBIT", "iShares Bitcoin Trust ETF", "ETF", "XNAS", "2024-01-11", 40.0),
];

/// Stocks of other types (ADRs, preferreds, an ETN, a closed-end fund).
#[rustfmt::skip]
pub const OTHER_STOCKS: &[RealListing] = &[
    listing("KIMpL", "Kimco Realty Corporation Class L Depositary Shares", "PFD", "XNYS", "2017-08-16", 21.0),
    listing("TSM", "Taiwan Semiconductor Manufacturing Company Ltd.", "ADRC", "XNYS", "1997-10-09", 180.0),
    listing("BABA", "Alibaba Group Holding Limited American Depositary Shares", "ADRC", "XNYS", "2014-09-19", 85.0),
    listing("ASML", "ASML Holding N.V. New York Registry Shares", "ADRC", "XNAS", "1995-03-15", 700.0),
    listing("NVO", "Novo Nordisk A/S", "ADRC", "XNYS", "1981-04-30", 100.0),
    listing("ARM", "Arm Holdings plc American Depositary Shares", "ADRC", "XNAS", "2023-09-14", 140.0),
    listing("VXX", "iPath Series B S&P 500 VIX Short-Term Futures ETN", "ETN", "BATS", "2018-01-18", 50.0),
    listing("PDI", "PIMCO Dynamic Income Fund", "FUND", "XNYS", "2012-05-25", 19.0),
];

/// A real split: (ticker, execution date, split_from, split_to).
#[rustfmt::skip]
pub const REAL_SPLITS: &[(&str, &str, f64, f64)] = &[
    ("AAPL", "2005-02-28", 1.0, 2.0),
    ("AAPL", "2014-06-09", 1.0, 7.0),
    ("AAPL", "2020-08-31", 1.0, 4.0),
    ("TSLA", "2020-08-31", 1.0, 5.0),
    ("TSLA", "2022-08-25", 1.0, 3.0),
    ("NVDA", "2021-07-20", 1.0, 4.0),
    ("NVDA", "2024-06-10", 1.0, 10.0),
    ("AMZN", "2022-06-06", 1.0, 20.0),
    ("GOOGL", "2022-07-18", 1.0, 20.0),
    ("GOOG", "2022-07-18", 1.0, 20.0),
    ("WMT", "2024-02-26", 1.0, 3.0),
    ("AVGO", "2024-07-15", 1.0, 10.0),
    ("CMG", "2024-06-26", 1.0, 50.0),
    ("GE", "2021-08-02", 8.0, 1.0),
];

/// A real crypto asset: (symbol, name, first date with data, USD price level).
#[rustfmt::skip]
pub const CRYPTO_ASSETS: &[(&str, &str, &str, f64)] = &[
    ("BTC", "Bitcoin", "2013-11-01", 60_000.0),
    ("ETH", "Ethereum", "2016-05-01", 3_000.0),
    ("SOL", "Solana", "2020-04-10", 150.0),
    ("XRP", "XRP", "2014-08-01", 0.6),
    ("ADA", "Cardano", "2017-10-01", 0.45),
    ("DOGE", "Dogecoin", "2014-01-01", 0.12),
    ("DOT", "Polkadot", "2020-08-20", 6.5),
    ("LTC", "Litecoin", "2013-11-01", 80.0),
    ("LINK", "Chainlink", "2017-09-20", 14.0),
    ("AVAX", "Avalanche", "2020-09-22", 30.0),
    ("BCH", "Bitcoin Cash", "2017-08-01", 400.0),
    ("XLM", "Stellar", "2014-08-05", 0.11),
    ("UNI", "Uniswap", "2020-09-17", 8.0),
    ("ATOM", "Cosmos", "2019-03-14", 8.5),
    ("ETC", "Ethereum Classic", "2016-07-24", 25.0),
    ("AAVE", "Aave", "2020-10-02", 100.0),
    ("ALGO", "Algorand", "2019-06-20", 0.18),
    ("MATIC", "Polygon", "2019-04-26", 0.7),
];

/// Quote currencies of extra real crypto pairs besides USD: (symbol, name, units per USD).
pub const CRYPTO_OTHER_QUOTES: &[(&str, &str, f64)] =
    &[("EUR", "Euro", 0.92), ("GBP", "British Pound", 0.79)];

/// Currencies: (ISO code, name, units per US dollar, roughly).
#[rustfmt::skip]
pub const CURRENCIES: &[(&str, &str, f64)] = &[
    ("USD", "United States Dollar", 1.0),
    ("EUR", "Euro", 0.92),
    ("JPY", "Japanese Yen", 150.0),
    ("GBP", "British Pound", 0.79),
    ("CHF", "Swiss Franc", 0.88),
    ("CAD", "Canadian Dollar", 1.36),
    ("AUD", "Australian Dollar", 1.52),
    ("NZD", "New Zealand Dollar", 1.65),
    ("SEK", "Swedish Krona", 10.5),
    ("NOK", "Norwegian Krone", 10.6),
    ("DKK", "Danish Krone", 6.9),
    ("HKD", "Hong Kong Dollar", 7.8),
    ("SGD", "Singapore Dollar", 1.34),
    ("CNH", "Chinese Yuan Renminbi Offshore", 7.2),
    ("MXN", "Mexican Peso", 17.5),
    ("ZAR", "South African Rand", 18.5),
    ("TRY", "Turkish Lira", 32.0),
    ("PLN", "Polish Zloty", 4.0),
    ("HUF", "Hungarian Forint", 360.0),
    ("CZK", "Czech Koruna", 23.0),
    ("ILS", "Israeli New Shekel", 3.7),
    ("INR", "Indian Rupee", 83.0),
    ("KRW", "South Korean Won", 1_330.0),
    ("BRL", "Brazilian Real", 5.0),
    ("THB", "Thai Baht", 36.0),
    ("IDR", "Indonesian Rupiah", 15_700.0),
    ("MYR", "Malaysian Ringgit", 4.7),
    ("PHP", "Philippine Peso", 56.0),
    ("TWD", "New Taiwan Dollar", 32.0),
    ("SAR", "Saudi Riyal", 3.75),
    ("AED", "United Arab Emirates Dirham", 3.6725),
    ("CLP", "Chilean Peso", 930.0),
    ("COP", "Colombian Peso", 3_900.0),
    ("PEN", "Peruvian Sol", 3.7),
    ("ISK", "Icelandic Krona", 138.0),
    ("RON", "Romanian Leu", 4.6),
    ("BGN", "Bulgarian Lev", 1.8),
    ("KWD", "Kuwaiti Dinar", 0.307),
    ("QAR", "Qatari Riyal", 3.64),
    ("EGP", "Egyptian Pound", 48.0),
    ("KES", "Kenyan Shilling", 130.0),
    ("NGN", "Nigerian Naira", 1_500.0),
];

/// The most traded currency pairs, listed first: (base, quote).
#[rustfmt::skip]
pub const FX_MAJORS: &[(&str, &str)] = &[
    ("EUR", "USD"), ("GBP", "USD"), ("USD", "JPY"), ("USD", "CHF"), ("AUD", "USD"),
    ("USD", "CAD"), ("NZD", "USD"), ("EUR", "GBP"), ("EUR", "JPY"), ("GBP", "JPY"),
    ("EUR", "CHF"), ("AUD", "JPY"), ("USD", "CNH"), ("USD", "MXN"), ("USD", "SEK"),
    ("USD", "NOK"), ("USD", "HKD"), ("USD", "SGD"), ("EUR", "AUD"), ("USD", "ZAR"),
];

/// Indices: (ticker, name, level).
#[rustfmt::skip]
pub const INDICES: &[(&str, &str, f64)] = &[
    ("I:SPX", "Standard & Poor's 500", 5_000.0),
    ("I:NDX", "Nasdaq-100", 18_000.0),
    ("I:DJI", "Dow Jones Industrial Average", 39_000.0),
    ("I:VIX", "Cboe Volatility Index", 15.0),
    ("I:RUT", "Russell 2000", 2_000.0),
    ("I:COMP", "NASDAQ Composite Index", 16_000.0),
    ("I:OEX", "S&P 100", 2_400.0),
    ("I:MID", "S&P MidCap 400", 2_900.0),
    ("I:SML", "S&P SmallCap 600", 1_300.0),
    ("I:NYA", "NYSE Composite Index", 17_500.0),
    ("I:DJT", "Dow Jones Transportation Average", 15_000.0),
    ("I:DJU", "Dow Jones Utility Average", 900.0),
    ("I:SOX", "PHLX Semiconductor Index", 4_500.0),
    ("I:XAU", "PHLX Gold/Silver Sector Index", 130.0),
    ("I:VXN", "Cboe Nasdaq-100 Volatility Index", 20.0),
    ("I:RUI", "Russell 1000", 2_700.0),
    ("I:RUA", "Russell 3000", 2_900.0),
    ("I:VVIX", "Cboe VIX of VIX Index", 90.0),
];

/// First words of generated company, fund and index names.
#[rustfmt::skip]
pub const NAME_WORDS: &[&str] = &[
    "Apex", "Summit", "Northstar", "Blue Ridge", "Crescent", "Harbor", "Pioneer", "Vertex",
    "Silverline", "Redwood", "Evergreen", "Keystone", "Lakeshore", "Meridian", "Orion",
    "Pinnacle", "Quantum", "Riverbend", "Sterling", "Titan", "Unity", "Westfield", "Zenith",
    "Atlas", "Beacon", "Cascade", "Delta Point", "Eagle", "Frontier", "Granite", "Horizon",
    "Ironwood", "Juniper", "Kestrel", "Liberty", "Magnolia", "Nova", "Oakmont", "Prairie",
    "Sagebrook", "Tidewater", "Copperline", "Bluewater", "Crestline", "Northgate",
];

/// Middle words of generated company names.
#[rustfmt::skip]
pub const COMPANY_WORDS: &[&str] = &[
    "Therapeutics", "Holdings", "Energy", "Semiconductor", "Bancorp", "Financial", "Systems",
    "Pharmaceuticals", "Technologies", "Industries", "Realty", "Networks", "Biosciences",
    "Resources", "Brands", "Capital", "Logistics", "Software", "Foods", "Motors", "Materials",
    "Communications", "Health", "Minerals", "Aerospace", "Robotics", "Utilities",
];

/// Endings of generated company names.
#[rustfmt::skip]
pub const COMPANY_SUFFIXES: &[&str] = &[
    "Inc.", "Corp.", "Co.", "Ltd.", "Group Inc.", "Corporation", "Inc. Class A Common Stock",
    "Holdings Inc.", "plc", "N.V.",
];

/// Themes of generated fund, note and index names.
#[rustfmt::skip]
pub const FUND_THEMES: &[&str] = &[
    "S&P 500 Equal Weight", "Nasdaq Momentum", "Short-Term Treasury",
    "High Yield Corporate Bond", "Emerging Markets", "Clean Energy", "Semiconductor",
    "Dividend Growth", "Small-Cap Value", "Gold Miners", "Cybersecurity", "Biotech",
    "Real Estate", "Municipal Bond", "International Developed", "Ultra Short Duration",
    "Covered Call", "Leveraged 2x Financials", "Inverse Treasury", "Infrastructure",
    "Quality Factor", "Low Volatility", "Water Resources",
];

/// Endings of generated crypto asset names.
pub const CRYPTO_SUFFIXES: &[&str] = &["coin", " Token", " Protocol", " Network", " Chain"];
